"""The Anthropic dialect's result lines: one per finished row, every outcome in the one file
(succeeded, errored with an Anthropic error object, canceled, expired)."""

from __future__ import annotations

from typing import Any

import orjson

from batchgate.domain.records import FinishedRow
from batchgate.domain.states import RowState

__all__ = ["render"]

_ERROR_TYPES = {
    "model_not_found": "not_found_error",
    "request_timeout": "timeout_error",
    "invalid_request_error": "invalid_request_error",
    "unpriced_model": "invalid_request_error",
    "budget_exceeded": "billing_error",
}


def render(batch_id: str, row: FinishedRow) -> tuple[bool, bytes]:
    """One Anthropic Message Batches result line; every line goes to the one file."""
    head = b'{"custom_id":' + orjson.dumps(row.custom_id) + b',"result":'
    state = row.state
    if state == RowState.SUCCEEDED:
        return True, head + b'{"type":"succeeded","message":' + bytes(row.response or b"") + b"}}\n"
    if state in (RowState.CANCELED, RowState.EXPIRED):
        kind = "canceled" if state == RowState.CANCELED else "expired"
        return True, head + b'{"type":"' + kind.encode() + b'"}}\n'
    envelope = {"type": "error", "error": _error(row), "request_id": row.request_id}
    return True, head + b'{"type":"errored","error":' + orjson.dumps(envelope) + b"}}\n"


def _error(row: FinishedRow) -> Any:
    error: Any = None
    if row.response is not None:
        error = orjson.loads(bytes(row.response)).get("error")
    if not isinstance(error, dict) or "type" not in error:
        kind = _ERROR_TYPES.get(row.error_code or "", "api_error")
        error = {"type": kind, "message": row.error_message or f"upstream status {row.status_code}"}
    return error
