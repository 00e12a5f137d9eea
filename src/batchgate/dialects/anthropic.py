"""The Anthropic Message Batches dialect: inline ``requests[]`` of Messages params; its create
check and its result lines (one file, every outcome in it)."""

from __future__ import annotations

import time
from typing import Any

import orjson

from batchgate import ids
from batchgate.dialects.base import CreateContext, Dialect, Draft
from batchgate.domain.budget import BUDGET_FIELD, parse_budget_usd
from batchgate.domain.messages import check_requests
from batchgate.domain.records import Batch, FinishedRow
from batchgate.domain.states import BatchStatus, RowState
from batchgate.errors import InvalidRequest

__all__ = ["DIALECT", "render"]

ENDPOINT = "/v1/messages"
_ERROR_TYPES = {
    "model_not_found": "not_found_error",
    "request_timeout": "timeout_error",
    "invalid_request_error": "invalid_request_error",
    "unpriced_model": "invalid_request_error",
    "budget_exceeded": "billing_error",
}


def create(ctx: CreateContext, tenant: str, body: Any) -> Draft:
    """The requests are checked for the create-time rules; a worker validates them into rows
    like a file (a request's params problem then fails that request alone)."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    requests = check_requests(body.get("requests"))
    budget = parse_budget_usd(body.get(BUDGET_FIELD))
    if len(requests) > ctx.max_lines:  # what ingest enforces: refuse now, not as an empty end
        raise InvalidRequest(
            f"requests: this server takes at most {ctx.max_lines} requests per batch, "
            f"got {len(requests)}.",
            param="requests",
        )
    lines = [
        orjson.dumps({"custom_id": item["custom_id"], "params": item["params"]})
        for item in requests
    ]
    now = int(time.time())
    return Draft(Batch(
        id=ids.new_id("msgbatch_"), tenant=tenant, dialect="anthropic", endpoint=ENDPOINT,
        status=BatchStatus.VALIDATING, created_at=now, expires_at=now + 86400,
        total=len(requests), budget_ticks=budget,
    ), lines)  # fmt: skip


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


DIALECT = Dialect("anthropic", create, render, lenient_lines=True)
