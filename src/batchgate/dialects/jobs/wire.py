"""The jobs dialect's wire objects: a job from its row (RFC 3339 stamps, a string error, integer
ticks) and the error envelope, ``{"error": "<message>"}`` with the location in the message."""

from __future__ import annotations

from typing import Any

import orjson

from batchgate.dialects.anthropic.wire import rfc3339
from batchgate.dialects.base import ApiError
from batchgate.dialects.rows import row_error
from batchgate.domain.jobs import STATUS, job_id, label
from batchgate.domain.records import RequestRecord
from batchgate.domain.states import OPEN_ROWS, RowState


def job_object(row: RequestRecord) -> dict[str, Any]:
    """A job from its request row (with its batch's ``created_at``). ``cost_ticks`` is the
    row's recorded cost in ticks (1e-9 USD): 0 until it finishes, and 0 for an unpriced model."""
    model, title = label(row.custom_id)
    state = row.state
    ended = state not in OPEN_ROWS
    return {
        "job_id": job_id(row.batch_id, row.line),
        "status": STATUS[state],
        "model": model,
        "title": title,
        "created_at": rfc3339(row.created_at),
        "completed_at": rfc3339(int(row.finished_at)) if ended and row.finished_at else None,
        "result": reply_text(row.response) if state == RowState.SUCCEEDED else None,
        "error": _error(row) if ended and state != RowState.SUCCEEDED else None,
        "cost_ticks": row.cost_ticks or 0,
    }


def reply_text(response: bytes | None) -> Any:
    """The text of a chat completion's first choice (None when it has none)."""
    try:
        doc = orjson.loads(bytes(response or b"null"))
        return doc["choices"][0]["message"].get("content")
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return None


def _error(row: RequestRecord) -> str:
    response = bytes(row.response) if row.response is not None else None
    code, message = row_error(response, row.error_code, row.error_message)
    return message or code


def envelope(error: ApiError) -> dict[str, Any]:
    """``{"error": "<message>"}``: the message names the field (``jobs.2.prompt: …``)."""
    return {"error": error.message}
