"""The OpenAI dialect's wire objects: File, Batch, a list page and the error envelope (every
key present, null when unset; Unix-second timestamps)."""

from __future__ import annotations

from typing import Any

import orjson

from batchgate.dialects.base import ApiError, View
from batchgate.domain.budget import budget_object
from batchgate.domain.cost import cost_object
from batchgate.domain.health import upstreams_object
from batchgate.domain.records import Batch, FileRecord

_STAMPS = (
    "in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at",
    "cancelling_at", "cancelled_at",
)  # fmt: skip


def file_object(file: FileRecord) -> dict[str, Any]:
    return {
        "id": file.id,
        "object": "file",
        "bytes": file.bytes,
        "created_at": file.created_at,
        "filename": file.filename,
        "purpose": file.purpose,
        "status": file.status,
        "expires_at": file.expires_at,
        "status_details": None,
    }


def _json(text: str | None) -> Any:
    return orjson.loads(text) if text else None


def batch_object(row: Batch, _view: View | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": row.id,
        "object": "batch",
        "endpoint": row.endpoint,
        "model": row.model,
        "errors": _json(row.errors),
        "input_file_id": row.input_file_id,
        "completion_window": row.completion_window,
        "status": row.status,
        "output_file_id": row.output_file_id,
        "error_file_id": row.error_file_id,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
    }
    for stamp in _STAMPS:
        obj[stamp] = getattr(row, stamp)
    obj["request_counts"] = {
        "total": row.total,
        "completed": row.completed,
        "failed": row.failed,
    }
    inp, out = row.input_tokens, row.output_tokens
    obj["usage"] = {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": row.cached_tokens},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": row.reasoning_tokens},
        "total_tokens": inp + out,
    }
    obj["metadata"] = _json(row.metadata)
    obj["cost"] = cost_object(row)  # extension field (batchgate.domain.cost)
    obj["budget"] = budget_object(row)  # extension field (batchgate.domain.budget)
    obj["upstreams"] = upstreams_object(row)  # extension field (batchgate.domain.health)
    return obj


def page(items: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }


def envelope(error: ApiError) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": error.message, "type": error.type, "param": error.param,
                      "code": error.code}}  # fmt: skip
