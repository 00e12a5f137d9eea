"""The typed objects read the wire leniently: unknown keys ignored, missing ones None."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from batchgate.client import (
    Batch,
    BatchResult,
    Counts,
    Deleted,
    File,
    MessageBatch,
    MessageBatchResult,
    Page,
)

BATCH = {
    "id": "batch_7d1e", "object": "batch", "endpoint": "/v1/chat/completions",
    "model": "local-model", "errors": None, "input_file_id": "file-9f2c",
    "completion_window": "24h", "status": "completed", "output_file_id": "file-out1",
    "error_file_id": "file-err1", "created_at": 1767225600, "in_progress_at": 1767225605,
    "expires_at": 1767312000, "finalizing_at": 1767229000, "completed_at": 1767229010,
    "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
    "request_counts": {"total": 3, "completed": 2, "failed": 1},
    "usage": {"input_tokens": 120, "input_tokens_details": {"cached_tokens": 7},
              "output_tokens": 40, "output_tokens_details": {"reasoning_tokens": 0},
              "total_tokens": 160},
    "metadata": {"job": "nightly"}, "something_new": [1, 2],
}  # fmt: skip


def test_batch_from_the_spec_example() -> None:
    batch = Batch.from_wire(BATCH)
    assert (batch.id, batch.status, batch.output_file_id) == (
        "batch_7d1e",
        "completed",
        "file-out1",
    )
    assert batch.request_counts.completed == 2 and batch.completed_at == 1767229010
    assert batch.counts == Counts(total=3, succeeded=2, failed=1) and batch.counts.done == 3
    assert batch.usage is not None and (batch.usage.total_tokens, batch.usage.cached_tokens) == (
        160, 7,
    )  # fmt: skip
    assert batch.metadata == {"job": "nightly"} and batch.errors == []
    assert batch.ended and batch.raw["something_new"] == [1, 2]


def test_a_sparse_batch_reads_with_nones_and_zeros() -> None:
    batch = Batch.from_wire({"id": "b", "status": "failed", "request_counts": None,
                             "errors": {"data": [{"code": "empty_file", "line": None}, "junk"]},
                             "created_at": "not an int"})  # fmt: skip
    assert batch.ended and batch.created_at is None and batch.usage is None
    assert batch.counts == Counts(0, 0, 0)
    assert [(e.code, e.line, e.message) for e in batch.errors] == [("empty_file", None, None)]


@pytest.mark.parametrize(
    ("status", "ended"),
    [("validating", False), ("in_progress", False), ("finalizing", False),
     ("cancelling", False), ("completed", True), ("failed", True), ("expired", True),
     ("cancelled", True), (None, False)],
)  # fmt: skip
def test_batch_ended(status: str | None, ended: bool) -> None:
    assert Batch.from_wire({"id": "b", "status": status}).ended is ended


def test_message_batch_counts_and_times() -> None:
    batch = MessageBatch.from_wire({
        "id": "msgbatch_01ab", "type": "message_batch", "processing_status": "ended",
        "request_counts": {"processing": 0, "succeeded": 1, "errored": 1, "canceled": 1,
                           "expired": 1},
        "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-02T00:00:00+00:00",
        "ended_at": "soon", "cancel_initiated_at": None, "archived_at": None,
        "results_url": "http://h/v1/messages/batches/msgbatch_01ab/results",
    })  # fmt: skip
    assert batch.ended and batch.status == "ended"
    assert batch.counts == Counts(total=4, succeeded=1, failed=3)
    assert batch.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert batch.expires_at == datetime(2026, 1, 2, tzinfo=UTC) and batch.ended_at is None
    running = MessageBatch.from_wire({"id": "m", "processing_status": "canceling"})
    assert not running.ended and running.counts == Counts(0, 0, 0)


def test_file_page_and_deleted() -> None:
    raw = {"id": "file-1", "bytes": 10, "filename": "a.jsonl", "purpose": "batch", "x": 1}
    f = File.from_wire(raw)
    assert (f.bytes, f.status, f.expires_at) == (10, None, None)
    page = Page.from_wire(
        {"data": [raw, {**raw, "id": "file-2"}], "has_more": True}, File.from_wire
    )
    assert (page.first_id, page.last_id, page.has_more) == ("file-1", "file-2", True)
    assert Page.from_wire({"data": []}, File.from_wire) == Page([], False, None, None)
    assert Deleted.from_wire({"id": "f", "object": "file", "deleted": True}).deleted
    assert Deleted.from_wire({"id": "m", "type": "message_batch_deleted"}).deleted
    assert not Deleted.from_wire({"id": "x"}).deleted
    with pytest.raises(ValueError, match="'id'"):
        File.from_wire({"bytes": 3})


def test_batch_results() -> None:
    ok = BatchResult.from_wire(
        {
            "id": "r",
            "custom_id": "a",
            "error": None,
            "response": {
                "status_code": 200,
                "request_id": "req_1",
                "body": {"object": "chat.completion"},
            },
        }
    )
    assert ok.ok and ok.request_id == "req_1" and ok.body == {"object": "chat.completion"}
    rejected = BatchResult.from_wire(
        {
            "custom_id": "b",
            "response": {"status_code": 400, "body": {"error": {"message": "bad"}}},
            "error": None,
        }
    )
    assert not rejected.ok and rejected.error is None and rejected.status_code == 400
    expired = BatchResult.from_wire(
        {"custom_id": "c", "response": None, "error": {"code": "batch_expired", "message": "late"}}
    )
    assert not expired.ok and expired.status_code is None
    assert expired.error is not None and expired.error.code == "batch_expired"
    with pytest.raises(ValueError, match="custom_id"):
        BatchResult.from_wire({"custom_id": 5})


def test_message_batch_results() -> None:
    ok = MessageBatchResult.from_wire(
        {"custom_id": "a", "result": {"type": "succeeded", "message": {"id": "msg_1"}}}
    )
    assert ok.ok and ok.message == {"id": "msg_1"} and ok.error is None
    errored = MessageBatchResult.from_wire({"custom_id": "b", "result": {
        "type": "errored", "error": {"type": "error", "error": {
            "type": "invalid_request_error", "message": "max_tokens: required"}}}})  # fmt: skip
    assert not errored.ok and errored.error is not None
    assert (errored.error.code, errored.error.message) == (
        "invalid_request_error", "max_tokens: required",
    )  # fmt: skip
    canceled = MessageBatchResult.from_wire({"custom_id": "c", "result": {"type": "canceled"}})
    assert not canceled.ok and canceled.type == "canceled" and canceled.message is None
