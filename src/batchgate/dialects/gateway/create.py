"""The gateway dialect's create check: ``model: "provider:model"`` and ``requests[]`` in the
body, stored as OpenAI batch lines."""

from __future__ import annotations

import time
from typing import Any

import orjson

from batchgate import ids
from batchgate.dialects.base import CreateContext, Draft
from batchgate.dialects.openai.create import check_metadata, completion_window
from batchgate.domain import gateway
from batchgate.domain.budget import BUDGET_FIELD, parse_budget_usd
from batchgate.domain.records import Batch
from batchgate.domain.states import BatchStatus
from batchgate.errors import InvalidRequest

__all__ = ["create"]


def create(ctx: CreateContext, tenant: str, body: Any) -> Draft:
    """Its requests are checked now (a 400 names the bad one); a worker validates them into
    rows like a file."""
    model = gateway.check_model(body.get("model"))
    if ctx.provider_of(model) is None:
        raise InvalidRequest(
            f"model: no provider serves {model!r}; name one as 'provider:model', or use an "
            "alias or a model a provider lists.",
            param="model", code="model_not_found",
        )  # fmt: skip
    window_text = body.get("completion_window", "24h")
    window = completion_window(window_text)
    metadata = check_metadata(body.get("metadata"))
    budget = parse_budget_usd(body.get(BUDGET_FIELD))
    lines = gateway.request_lines(body.get("requests"), model, ctx.max_lines)
    now = int(time.time())
    return Draft(Batch(
        id=ids.batch_id(), tenant=tenant, dialect="gateway", endpoint=gateway.ENDPOINT,
        completion_window=window_text, status=BatchStatus.VALIDATING, created_at=now,
        expires_at=now + window, total=len(lines), model=model,
        metadata=orjson.dumps(metadata).decode() if metadata is not None else None,
        budget_ticks=budget,
    ), lines)  # fmt: skip
