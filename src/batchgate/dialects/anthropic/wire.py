"""The Anthropic dialect's wire objects: MessageBatch (RFC 3339 timestamps, five counts), a list
page and the error envelope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from batchgate.dialects.base import ApiError, View
from batchgate.domain.budget import budget_object
from batchgate.domain.cost import cost_object
from batchgate.domain.error_types import anthropic_error_type
from batchgate.domain.health import upstreams_object
from batchgate.domain.records import Batch
from batchgate.domain.retry import RETRY_OF, retry_of
from batchgate.domain.states import TERMINAL

_PROCESSING = {"cancelling": "canceling"}


def rfc3339(ts: int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def processing_status(status: str) -> str:
    if status in TERMINAL:
        return "ended"
    return _PROCESSING.get(status, "in_progress")


def message_batch(row: Batch, view: View) -> dict[str, Any]:
    """``view.base_url`` is how the client reached this server (an absolute ``results_url``)."""
    base_url = view.base_url
    status = processing_status(row.status)
    ended = status == "ended"
    done = row.completed + row.failed
    ended_at = row.completed_at or row.cancelled_at or row.expired_at or row.failed_at
    return {
        "id": row.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {
            "processing": max(0, row.total - done),
            "succeeded": row.completed,
            "errored": row.failed - row.canceled - row.expired,
            "canceled": row.canceled,
            "expired": row.expired,
        },
        "created_at": rfc3339(row.created_at),
        "expires_at": rfc3339(row.expires_at),
        "ended_at": rfc3339(ended_at) if ended else None,
        "cancel_initiated_at": rfc3339(row.cancelling_at),
        "archived_at": None,
        "results_url": (
            f"{base_url.rstrip('/')}/v1/messages/batches/{row.id}/results" if ended else None
        ),
        "cost": cost_object(row),  # extension field (batchgate.domain.cost)
        "budget": budget_object(row),  # extension field (batchgate.domain.budget)
        "upstreams": upstreams_object(row),  # extension field (batchgate.domain.health)
        RETRY_OF: retry_of(row.metadata),  # extension field: the batch this one retries
    }


def page(items: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "data": items,
        "has_more": has_more,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
    }


def envelope(error: ApiError) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}, "request_id"}``, the type by status."""
    kind = anthropic_error_type(error.status)
    return {"type": "error", "error": {"type": kind, "message": error.message},
            "request_id": error.request_id}  # fmt: skip
