"""``requeue_failed``: a completed batch's failed rows are queued again (all, or by error code)
through both doors, the batch reopens and its counters lose what the rows had added; on SQLite
and on PostgreSQL. The worker then sends and finalizes them as any other row."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from batchgate import ids
from batchgate.domain.records import Batch
from batchgate.engine.finalize import finalize
from batchgate.errors import InvalidTransition
from batchgate.storage.blobs import BlobStore
from batchgate.storage.sql import SqlStore
from batchgate.storage.types import IngestRow, RowResult


def _finished_batch(store: SqlStore, blobs: BlobStore) -> str:
    """Eight rows: lines 1-3 succeed, 4-5 fail upstream_error (5 with tokens and a price),
    6-7 request_timeout, 8 was failed by ingest (no upstream); then finalized: completed."""
    bid, now = ids.batch_id(), int(time.time())
    store.insert_batch(Batch(**{
        "id": bid, "tenant": "", "dialect": "openai", "endpoint": "/v1/chat/completions",
        "input_file_id": "file-x", "completion_window": "24h", "status": "in_progress",
        "created_at": now, "expires_at": now + 3600, "total": 8,
    }))  # fmt: skip
    rows = [IngestRow(i, f"c{i}", "queued", "up", "m", b"{}", 1, ticks=(1.0, 2.0))
            for i in range(1, 8)]  # fmt: skip
    rows.append(IngestRow(8, "c8", "failed", None, "nope", b"{}", 0, "model_not_found", "no"))
    store.insert_rows(bid, rows, time.time())
    with store.write() as conn:  # the ingest-failed row counts as failed, as ingest does
        conn.exec_driver_sql(store._q("UPDATE batches SET failed = 1 WHERE id = ?"), (bid,))
    leased = store.lease([bid], "up", 7, owner="w", token="t", now=time.time(), ttl=30)

    def result(line: int) -> RowResult:
        if line <= 3:
            return RowResult(bid, line, "t", "succeeded", 200, b"{}", input_tokens=2)
        code = "upstream_error" if line <= 5 else "request_timeout"
        tokens = 10 if line == 5 else 0
        return RowResult(bid, line, "t", "failed", 500, error_code=code, input_tokens=tokens)

    store.record([result(r.line) for r in leased], time.time())
    claimed = store.claim_finalizable("fin", time.time(), 30)
    assert claimed is not None and finalize(store, blobs, claimed, "fin")
    return bid


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def test_failed_rows_of_some_codes_are_queued_again_and_the_batch_reopens(
    store: SqlStore, blobs: BlobStore
) -> None:
    bid = _finished_batch(store, blobs)
    before = store.get_batch(bid)
    assert before is not None and before.status == "completed" and before.failed == 5
    assert before.input_tokens == 16 and before.cost_ticks == 16
    assert store.failed_codes(bid) == {"upstream_error": 2, "request_timeout": 2}

    later = int(time.time()) + 7200
    assert store.requeue_failed(bid, now=123, codes={"upstream_error"}, expires_at=later) == 2
    batch = store.get_batch(bid)
    assert batch is not None
    assert (batch.status, batch.in_progress_at, batch.expires_at) == ("in_progress", 123, later)
    assert (batch.finalizing_at, batch.completed_at, batch.output_file_id) == (None, None, None)
    assert (batch.completed, batch.failed, batch.input_tokens, batch.cost_ticks) == (3, 3, 6, 6)
    assert store.count_rows(bid) == {"succeeded": 3, "queued": 2, "failed": 3}
    assert store.failed_codes(bid) == {"request_timeout": 2}

    # Due at once, no attempt made, nothing of the failure left on them.
    again = store.lease([bid], "up", 10, owner="w2", token="t2", now=time.time(), ttl=30)
    assert sorted((r.line, r.attempts) for r in again) == [(4, 1), (5, 1)]
    store.record([RowResult(bid, r.line, "t2", "succeeded", 200, b"{}") for r in again], 0)
    assert store.claim_finalizable("fin2", time.time(), 30) is not None
    batch = store.get_batch(bid)
    assert batch is not None and (batch.completed, batch.failed) == (5, 3)


def test_a_running_batch_stays_running_and_nothing_to_retry_changes_nothing(
    store: SqlStore, blobs: BlobStore
) -> None:
    bid = _finished_batch(store, blobs)
    assert store.requeue_failed(bid, now=1, codes={"no_such_code"}) == 0
    batch = store.get_batch(bid)
    assert batch is not None and batch.status == "completed" and batch.completed_at

    assert store.requeue_failed(bid, now=2, codes={"request_timeout"}) == 2
    assert store.requeue_failed(bid, now=3) == 2  # the rest: the batch is still in_progress
    batch = store.get_batch(bid)
    assert batch is not None and (batch.status, batch.in_progress_at) == ("in_progress", 2)
    assert store.count_rows(bid) == {"succeeded": 3, "queued": 4, "failed": 1}  # ingest's stays
    assert batch.failed == 1
    assert store.requeue_failed(bid, now=4) == 0


def test_an_ended_batch_other_than_completed_is_refused_and_unchanged(
    store: SqlStore, blobs: BlobStore
) -> None:
    bid = _finished_batch(store, blobs)
    with store.write() as conn:
        conn.exec_driver_sql(store._q("UPDATE batches SET status = ? WHERE id = ?"),
                             ("expired", bid))  # fmt: skip
    with pytest.raises(InvalidTransition):
        store.requeue_failed(bid, now=5)
    assert store.count_rows(bid) == {"succeeded": 3, "failed": 5}
    batch = store.get_batch(bid)
    assert batch is not None and (batch.status, batch.failed) == ("expired", 5)


def test_unsucceeded_lines_are_the_rows_a_retry_batch_is_made_of(
    store: SqlStore, blobs: BlobStore
) -> None:
    """Failed rows (ingest's too) and rows never sent, in line order, by page and by code."""
    bid = _finished_batch(store, blobs)
    with store.write() as conn:  # line 7 as if a cancel had kept it from being sent
        conn.exec_driver_sql(store._q(
            "UPDATE requests SET state = 'canceled', error_code = 'batch_cancelled' "
            "WHERE batch_id = ? AND line = 7"), (bid,))  # fmt: skip
    assert store.unsucceeded_lines(bid, after=0, limit=100) == [4, 5, 6, 7, 8]
    assert store.unsucceeded_lines(bid, after=0, limit=2) == [4, 5]
    assert store.unsucceeded_lines(bid, after=5, limit=2) == [6, 7]
    assert store.unsucceeded_lines(bid, after=8, limit=2) == []
    codes = {"request_timeout", "batch_cancelled"}
    assert store.unsucceeded_lines(bid, after=0, limit=100, codes=codes) == [6, 7]
    assert store.unsucceeded_lines(bid, after=0, limit=100, codes={"nope"}) == []
    assert store.unsucceeded_lines("batch_none", after=0, limit=100) == []


def test_mark_retried_lets_one_retry_through(store: SqlStore, blobs: BlobStore) -> None:
    """The retry mark is one conditional update: of two retries only one gets it; it is
    cleared, or taken over, only by naming the mark it replaces."""
    bid = _finished_batch(store, blobs)
    assert store.mark_retried(bid, "batch_one", expect=None)
    assert not store.mark_retried(bid, "batch_two", expect=None)  # the racing second
    assert not store.mark_retried(bid, "batch_two", expect="batch_other")
    batch = store.get_batch(bid)
    assert batch is not None and batch.retried_by == "batch_one"
    assert store.mark_retried(bid, "batch_two", expect="batch_one")  # taken over
    assert store.mark_retried(bid, None, expect="batch_two")  # cleared
    batch = store.get_batch(bid)
    assert batch is not None and batch.retried_by is None
    assert not store.mark_retried("batch_none", "x", expect=None)
