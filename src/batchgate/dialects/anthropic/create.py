"""The Anthropic dialect's create check: inline ``requests[]`` of Messages params."""

from __future__ import annotations

import time
from typing import Any

import orjson

from batchgate import ids
from batchgate.dialects.base import CreateContext, Draft
from batchgate.domain.budget import BUDGET_FIELD, parse_budget_usd
from batchgate.domain.messages import check_requests
from batchgate.domain.records import Batch
from batchgate.domain.states import BatchStatus
from batchgate.errors import InvalidRequest

__all__ = ["ENDPOINT", "create"]

ENDPOINT = "/v1/messages"


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
