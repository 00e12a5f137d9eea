"""Finalization: stream a finished batch's rows into output and error files, in input order."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson

from batchgate import ids
from batchgate.domain.states import BatchStatus, RowState
from batchgate.storage.blobs import BlobStore
from batchgate.storage.sql import Store

DEFAULT_OUTPUT_TTL = 30 * 86400


def line_id(batch_id: str, line: int) -> str:
    """A stable per-line id, so a re-run finalization writes the same file."""
    digest = hashlib.blake2b(f"{batch_id}:{line}".encode(), digest_size=12).hexdigest()
    return f"batch_req_{digest}"


def render(batch_id: str, row: tuple[Any, ...]) -> tuple[bool, bytes]:
    """One OpenAI batch output line for a finished row; True when it belongs to the output file."""
    line, custom_id, state, status_code, response, request_id, error_code, error_message = row
    head = (
        b'{"id":"' + line_id(batch_id, line).encode() + b'","custom_id":' + orjson.dumps(custom_id)
    )
    if status_code is not None and response is not None and state != RowState.QUEUED:
        rid = orjson.dumps(request_id or "")
        body = bytes(response)
        resp = b'{"status_code":%d,"request_id":%s,"body":%s}' % (status_code, rid, body)
        return state == RowState.SUCCEEDED, head + b',"response":' + resp + b',"error":null}\n'
    err = orjson.dumps({"code": error_code or "unknown_error", "message": error_message or ""})
    return False, head + b',"response":null,"error":' + err + b"}\n"


_ERROR_TYPES = {
    "model_not_found": "not_found_error",
    "request_timeout": "timeout_error",
    "invalid_request_error": "invalid_request_error",
    "unpriced_model": "invalid_request_error",
    "budget_exceeded": "billing_error",
}


def render_message_result(batch_id: str, row: tuple[Any, ...]) -> tuple[bool, bytes]:
    """One Anthropic Message Batches result line (§3.4); every line goes to the one file."""
    _line, custom_id, state, status_code, response, request_id, error_code, error_message = row
    head = b'{"custom_id":' + orjson.dumps(custom_id) + b',"result":'
    if state == RowState.SUCCEEDED:
        return True, head + b'{"type":"succeeded","message":' + bytes(response) + b"}}\n"
    if state in (RowState.CANCELED, RowState.EXPIRED):
        kind = "canceled" if state == RowState.CANCELED else "expired"
        return True, head + b'{"type":"' + kind.encode() + b'"}}\n'
    error: Any = None
    if response is not None:
        error = orjson.loads(bytes(response)).get("error")
    if not isinstance(error, dict) or "type" not in error:
        kind = _ERROR_TYPES.get(error_code or "", "api_error")
        error = {"type": kind, "message": error_message or f"upstream status {status_code}"}
    envelope = {"type": "error", "error": error, "request_id": request_id}
    return True, head + b'{"type":"errored","error":' + orjson.dumps(envelope) + b"}}\n"


# The inline gateway and jobs dialects answer from the rows; their files are OpenAI-format.
RENDERERS = {
    "openai": render,
    "anthropic": render_message_result,
    "gateway": render,
    "jobs": render,
}


def finalize(store: Store, blobs: BlobStore, batch: dict[str, Any], token: str) -> bool:
    """Write the files and end the batch (completed, expired or cancelled). False if the claim
    was lost to another worker."""
    bid = batch["id"]
    if batch["status"] == BatchStatus.IN_PROGRESS and not store.set_status(
        bid, token, BatchStatus.FINALIZING.value, int(time.time())
    ):
        return False
    out_id, err_id = ids.file_id(), ids.file_id()
    expired = False
    with blobs.writer(out_id) as out, blobs.writer(err_id) as err:
        renderer = RENDERERS[batch["dialect"]]
        for row in store.iter_finished_rows(bid):
            good, data = renderer(bid, row)
            (out if good else err).write(data)
            expired = expired or row[2] == RowState.EXPIRED
        out_bytes, err_bytes = out.tell(), err.tell()
    now = int(time.time())
    ttl = batch.get("output_expires_after") or DEFAULT_OUTPUT_TTL
    new_files = []
    for fid, size, kind in ((out_id, out_bytes, "output"), (err_id, err_bytes, "error")):
        if size:
            new_files.append(_file_row(batch, fid, size, kind, now, ttl))
        else:
            blobs.delete(fid)
    target = BatchStatus.EXPIRED if expired else BatchStatus.COMPLETED
    done = store.finish_batch(
        bid, token, target=target.value, new_files=new_files, now=now,
        output_file_id=out_id if out_bytes else None,
        error_file_id=err_id if err_bytes else None,
    )  # fmt: skip
    if not done:
        for f in new_files:
            blobs.delete(f["id"])
    return done


def _file_row(
    batch: dict[str, Any], fid: str, size: int, kind: str, now: int, ttl: int
) -> dict[str, Any]:
    return {
        "id": fid, "tenant": batch["tenant"], "filename": f"{batch['id']}_{kind}.jsonl",
        "purpose": "batch_output", "bytes": size, "created_at": now,
        "expires_at": now + ttl, "status": "processed", "blob_key": fid,
    }  # fmt: skip
