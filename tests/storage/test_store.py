"""The SqlStore contract: every test runs on SQLite and on real PostgreSQL (``db_url``)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from batchgate import ids
from batchgate.domain.records import Batch, FileRecord
from batchgate.domain.states import (
    BatchStatus,
    RowState,
    on_cancel,
    on_finalize,
    on_validation_failed,
)
from batchgate.domain.sweeps import Sweep
from batchgate.engine.finalize import finalize
from batchgate.errors import InvalidTransition
from batchgate.storage.blobs import BlobStore
from batchgate.storage.schema import metadata
from batchgate.storage.sql import SqlStore
from batchgate.storage.types import IngestRow, LeasedRow, RowResult


def _batch(store: SqlStore, *, status: str = "in_progress", tenant: str = "") -> str:
    bid = ids.batch_id()
    now = int(time.time())
    store.insert_batch(Batch(**{
        "id": bid, "tenant": tenant, "dialect": "openai", "endpoint": "/v1/chat/completions",
        "input_file_id": "file-x", "completion_window": "24h", "status": status,
        "created_at": now, "expires_at": now + 86400,
    }))  # fmt: skip
    return bid


def _rows(store: SqlStore, bid: str, n: int, upstream: str = "up", start: int = 1) -> None:
    rows = [
        IngestRow(i, f"c{i}", "queued", upstream, "m", b'{"model":"m"}', 10)
        for i in range(start, start + n)
    ]
    store.insert_rows(bid, rows, time.time())
    with store.write() as conn:  # a started batch knows its total
        conn.exec_driver_sql(
            store._q("UPDATE batches SET total = total + ? WHERE id = ?"), (n, bid)
        )


def _fail(
    store: SqlStore, bid: str, token: str, errors: list[dict[str, str | int]], now: int
) -> None:
    """What ingest does with an invalid input: the batch fails (or, cancelled, ends so)."""
    doc = orjson.dumps({"object": "list", "data": errors}).decode()
    store.advance_batch(
        bid, on_validation_failed, now=now, token=token, values={"errors": doc}, drop_rows=True
    )


def _ok(r: LeasedRow, state: str = "succeeded") -> RowResult:
    return RowResult(
        r.batch_id, r.line, r.lease_token, state, status_code=200,
        response=b'{"ok":true}', input_tokens=3, output_tokens=4,
    )  # fmt: skip


def _lease(
    store: SqlStore, bids: list[str], n: int, owner: str = "w1", ttl: float = 30
) -> list[LeasedRow]:
    token = ids.new_id("t")
    return store.lease(bids, "up", n, owner=owner, token=token, now=time.time(), ttl=ttl)


def test_migrations_match_the_schema(store: SqlStore) -> None:
    store.migrate()  # idempotent: a second run is a no-op
    with store._write.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_files_page_by_id_in_both_orders(store: SqlStore) -> None:
    made = []
    for i in range(5):
        fid = ids.file_id()
        made.append(fid)
        store.insert_file(FileRecord(**{
            "id": fid, "tenant": "", "filename": f"f{i}", "purpose": "batch", "bytes": i,
            "created_at": int(time.time()), "expires_at": None, "status": "processed",
            "blob_key": fid,
        }))  # fmt: skip
        time.sleep(0.002)
    page, more = store.list_files(None, purpose=None, after=None, limit=2, order="asc")
    assert [r.id for r in page] == made[:2] and more
    page, more = store.list_files(None, purpose=None, after=made[3], limit=2, order="asc")
    assert [r.id for r in page] == made[4:] and not more
    page, _ = store.list_files(None, purpose=None, after=made[2], limit=9, order="desc")
    assert [r.id for r in page] == [made[1], made[0]]
    assert store.get_file(made[0], "other-tenant") is None
    assert store.delete_file(made[0]) is not None and store.get_file(made[0]) is None


def test_lease_is_fair_across_batches_and_exclusive(store: SqlStore) -> None:
    a, b = _batch(store), _batch(store)
    _rows(store, a, 50)
    _rows(store, b, 50)
    got = _lease(store, [a, b], 20)
    per = {a: 0, b: 0}
    for r in got:
        per[r.batch_id] += 1
        assert r.attempts == 1 and r.body == b'{"model":"m"}'
    assert per == {a: 10, b: 10}
    again = _lease(store, [a, b], 200, owner="w2")
    assert len(again) == 80  # the first 20 stay with w1
    assert not {(r.batch_id, r.line) for r in got} & {(r.batch_id, r.line) for r in again}


def test_record_applies_only_with_the_live_lease_token(store: SqlStore) -> None:
    bid = _batch(store)
    _rows(store, bid, 3)
    rows = _lease(store, [bid], 3)
    stale = _ok(rows[0])
    stale.lease_token = "not-the-token"
    assert store.record([stale], time.time()) == 0
    assert store.record([_ok(r) for r in rows[1:]], time.time()) == 2
    assert store.record([_ok(rows[1])], time.time()) == 0  # already recorded: exactly once
    batch = store.get_batch(bid)
    assert batch is not None
    assert (batch.completed, batch.failed, batch.input_tokens) == (2, 0, 6)
    assert store.count_rows(bid) == {"leased": 1, "succeeded": 2}


def test_retry_requeues_until_due(store: SqlStore) -> None:
    bid = _batch(store)
    _rows(store, bid, 1)
    (row,) = _lease(store, [bid], 1)
    retry = RowResult(bid, row.line, row.lease_token, "queued", status_code=429,
                      next_attempt_at=time.time() + 60)  # fmt: skip
    assert store.record([retry], time.time()) == 1
    assert _lease(store, [bid], 1) == []  # not due yet
    with store.write() as conn:
        conn.exec_driver_sql(store._q("UPDATE requests SET next_attempt_at = 0"))
    (again,) = _lease(store, [bid], 1)
    assert again.attempts == 2
    assert store.get_batch(bid).completed == 0  # type: ignore[union-attr]


def test_expired_leases_are_reclaimed_and_heartbeats_keep_them(store: SqlStore) -> None:
    bid = _batch(store)
    _rows(store, bid, 4)
    dead = _lease(store, [bid], 2, owner="dead", ttl=0.01)
    live = _lease(store, [bid], 2, owner="live", ttl=0.01)
    assert store.heartbeat("live", time.time() + 60) == 2
    time.sleep(0.05)
    assert store.reclaim_expired_leases(time.time()) == 2
    assert store.record([_ok(dead[0])], time.time()) == 0  # the dead worker lost its rows
    assert store.record([_ok(live[0])], time.time()) == 1
    taken = _lease(store, [bid], 10, owner="new")
    assert sorted(r.line for r in taken) == sorted(r.line for r in dead)
    assert store.release_leases("new") == 2
    assert store.count_rows(bid)["queued"] == 2


def test_cancel_ends_queued_rows_and_counts_them(store: SqlStore) -> None:
    bid = _batch(store)
    _rows(store, bid, 5)
    leased = _lease(store, [bid], 2)
    store.advance_batch(bid, on_cancel, now=int(time.time()))
    cancelled = "This request was not sent: the batch was cancelled."
    assert Sweep(bid, "batch_cancelled", cancelled) in store.batches_to_sweep(time.time())
    assert store.end_queued_rows(bid, "batch_cancelled", time.time()) == 3
    assert store.record([_ok(r) for r in leased], time.time()) == 2  # in-flight ones finish
    batch = store.get_batch(bid)
    assert batch is not None
    assert batch.status == "cancelling" and batch.cancelling_at is not None
    counters = (batch.completed, batch.failed, batch.canceled, batch.expired)
    assert counters == (2, 3, 3, 0)
    assert store.count_rows(bid) == {"succeeded": 2, "canceled": 3}
    assert store.advance_batch("batch_nope", on_cancel, now=0) is None  # nothing to move


def test_duplicates_are_found_by_the_database(store: SqlStore) -> None:
    bid = _batch(store, status="validating")
    rows = [IngestRow(i, cid, "queued", "up", "m", b"{}", 1)
            for i, cid in enumerate(["a", "b", "a", "c", "b", "a"], start=1)]  # fmt: skip
    store.insert_rows(bid, rows, time.time())
    dups, total = store.duplicate_custom_ids(bid, limit=2)
    assert dups == [("a", 3), ("b", 5)] and total == 3


def test_a_claim_is_exclusive_until_it_expires(store: SqlStore) -> None:
    bid = _batch(store, status="validating")
    first = store.claim_batch([BatchStatus.VALIDATING], "t1", time.time(), ttl=0.05)
    assert first is not None and first.id == bid
    assert store.claim_batch([BatchStatus.VALIDATING], "t2", time.time(), ttl=30) is None
    time.sleep(0.1)
    assert store.claim_batch([BatchStatus.VALIDATING], "t2", time.time(), ttl=30) is not None
    _fail(store, bid, "t1", [{"code": "x"}], 0)  # the stale claim changes nothing
    assert store.get_batch(bid).status == "validating"  # type: ignore[union-attr]
    _fail(store, bid, "t2", [{"code": "x", "line": 1}], int(time.time()))
    batch = store.get_batch(bid)
    assert batch is not None and batch.status == "failed" and batch.failed_at
    assert orjson.loads(batch.errors or "")["data"] == [{"code": "x", "line": 1}]


def test_finalize_writes_files_in_input_order(store: SqlStore, tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    bid = _batch(store)
    _rows(store, bid, 6)
    rows = _lease(store, [bid], 6)
    results = [_ok(r) for r in rows[::2]] + [
        RowResult(bid, r.line, r.lease_token, "failed", error_code="request_timeout",
                  error_message="slow") for r in rows[1::2]
    ]  # fmt: skip
    store.record(results[::-1], time.time())
    batch = store.claim_finalizable("fin", time.time(), 30)
    assert batch is not None and batch.id == bid
    assert finalize(store, blobs, batch, "fin")
    batch = store.get_batch(bid)
    assert batch is not None
    assert batch.status == "completed" and batch.finalizing_at and batch.completed_at
    out = blobs.path(batch.output_file_id or "").read_bytes().splitlines()
    err = blobs.path(batch.error_file_id or "").read_bytes().splitlines()
    assert [orjson.loads(x)["custom_id"] for x in out] == ["c1", "c3", "c5"]
    assert [orjson.loads(x)["error"]["code"] for x in err] == ["request_timeout"] * 3
    assert store.get_file(batch.output_file_id).purpose == "batch_output"  # type: ignore[union-attr, arg-type]
    with pytest.raises(InvalidTransition):
        store.advance_batch(bid, on_cancel, now=0)


def test_counts_equal_a_count_over_rows(store: SqlStore) -> None:
    bid = _batch(store)
    _rows(store, bid, 30)
    rows = _lease(store, [bid], 30)
    store.record([_ok(r) for r in rows[:10]], time.time())
    store.record([_ok(r, "failed") for r in rows[10:15]], time.time())
    store.release_leases("w1")
    store.advance_batch(bid, on_cancel, now=0)
    store.end_queued_rows(bid, "batch_cancelled", time.time())
    batch = store.get_batch(bid)
    counts = store.count_rows(bid)
    assert batch is not None
    assert batch.completed == counts.get(RowState.SUCCEEDED, 0) == 10
    assert batch.failed == counts["failed"] + counts["canceled"] == 20
    assert batch.total == sum(counts.values())


def test_rows_after_pages_and_skips_open_rows(store: SqlStore) -> None:
    bid = _batch(store)
    _rows(store, bid, 6)
    leased = _lease(store, [bid], 6)
    store.record([_ok(r) for r in leased if r.line in (2, 3, 5)], time.time())
    finished = store.rows_after(bid, 0, 10, finished_only=True)
    assert [r[0] for r in finished] == [2, 3, 5]
    assert [r.line for r in store.rows_after(bid, 2, 1, finished_only=True)] == [3]
    assert [r.line for r in store.rows_after(bid, 3, 10)] == [4, 5, 6]  # open rows too
    assert finished[0][1:3] == ("c2", "succeeded")


def test_the_door_refuses_an_illegal_move_and_changes_nothing(store: SqlStore) -> None:
    bid = _batch(store, status="completed")
    with pytest.raises(InvalidTransition):
        store.advance_batch(bid, on_cancel, now=5, values={"model": "changed"})
    batch = store.get_batch(bid)
    assert batch is not None and (batch.status, batch.cancelling_at, batch.model) == (
        "completed", None, None,
    )  # fmt: skip
    # A stale claim moves nothing either; the batch's own claim does, and stamps the time.
    bid = _batch(store, status="in_progress")
    assert store.advance_batch(bid, on_finalize, now=7, token="nobody's") is None
    with store.write() as conn:
        conn.exec_driver_sql(
            store._q("UPDATE batches SET claim_token = ? WHERE id = ?"), ("t", bid)
        )
    assert store.advance_batch(bid, on_finalize, now=7, token="t", keep_claim=True) == "finalizing"
    batch = store.get_batch(bid)
    assert batch is not None and (batch.finalizing_at, batch.claim_token) == (7, "t")
