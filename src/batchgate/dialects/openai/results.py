"""The OpenAI dialect's result lines: one per finished row, for the output file (succeeded) or
the error file (every other outcome), in the hosted batch API's format."""

from __future__ import annotations

import hashlib

import orjson

from batchgate.domain.records import FinishedRow
from batchgate.domain.states import RowState

__all__ = ["line_id", "render"]


def line_id(batch_id: str, line: int) -> str:
    """A stable per-line id, so a re-run finalization writes the same file."""
    digest = hashlib.blake2b(f"{batch_id}:{line}".encode(), digest_size=12).hexdigest()
    return f"batch_req_{digest}"


def render(batch_id: str, row: FinishedRow) -> tuple[bool, bytes]:
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
