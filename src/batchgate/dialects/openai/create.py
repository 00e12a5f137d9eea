"""The OpenAI dialect's create check: a batch reads an uploaded JSONL file, validated later by a
worker, streaming; only the create request itself is checked here."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

from batchgate import ids
from batchgate.dialects.base import CreateContext, Draft
from batchgate.domain.budget import BUDGET_FIELD, parse_budget_usd
from batchgate.domain.records import Batch
from batchgate.domain.states import BatchStatus
from batchgate.errors import InvalidRequest

__all__ = ["ENDPOINTS", "check_metadata", "completion_window", "create"]

ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")
_WINDOW = re.compile(r"^(\d{1,3})h$")


def create(ctx: CreateContext, tenant: str, body: Any) -> Draft:
    """Check the create request (not the file: that is validated by a worker, streaming)."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    for name in ("input_file_id", "endpoint", "completion_window"):
        if body.get(name) is None:
            raise InvalidRequest(
                f"Missing required parameter: '{name}'.",
                param=name, code="missing_required_parameter",
            )  # fmt: skip
    endpoint = _endpoint(body["endpoint"])
    window = completion_window(body["completion_window"])
    metadata = check_metadata(body.get("metadata"))
    output_ttl = _output_expiry(body.get("output_expires_after"))
    budget = parse_budget_usd(body.get(BUDGET_FIELD))
    fid = body["input_file_id"]
    _check_input(ctx, tenant, fid)
    now = int(time.time())
    return Draft(Batch(
        id=ids.batch_id(), tenant=tenant, dialect="openai", endpoint=endpoint,
        input_file_id=fid, completion_window=body["completion_window"],
        status=BatchStatus.VALIDATING, created_at=now, expires_at=now + window,
        metadata=orjson.dumps(metadata).decode() if metadata is not None else None,
        output_expires_after=output_ttl, budget_ticks=budget,
    ))  # fmt: skip


def _check_input(ctx: CreateContext, tenant: str, fid: Any) -> None:
    file = ctx.batch_file(tenant, fid)
    if file is None:
        raise InvalidRequest(
            f"No such File object: {fid}", param="input_file_id", code="invalid_file"
        )
    if file.purpose != "batch":
        raise InvalidRequest(
            f"File {fid} has purpose {file.purpose!r}; a batch input needs 'batch'.",
            param="input_file_id", code="invalid_file",
        )  # fmt: skip


def _endpoint(value: Any) -> str:
    if value not in ENDPOINTS:
        raise InvalidRequest(
            f"Unsupported endpoint {value!r}; batchgate supports {', '.join(ENDPOINTS)}.",
            param="endpoint", code="invalid_value",
        )  # fmt: skip
    return str(value)


def completion_window(value: Any) -> int:
    """A ``completion_window`` in seconds: whole hours from ``1h`` to ``168h``."""
    m = _WINDOW.match(value) if isinstance(value, str) else None
    hours = int(m.group(1)) if m else 0
    if not 1 <= hours <= 168:
        raise InvalidRequest(
            f"Invalid completion_window {value!r}: expected '24h' (or another whole number of "
            "hours from '1h' to '168h').",
            param="completion_window", code="invalid_value",
        )  # fmt: skip
    return hours * 3600


def check_metadata(value: Any) -> dict[str, str] | None:
    """OpenAI's metadata rules: ≤ 16 pairs, string keys ≤ 64 chars, string values ≤ 512."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("metadata must be an object of strings.", param="metadata")
    if len(value) > 16:
        raise InvalidRequest("metadata can have at most 16 pairs.", param="metadata")
    for k, v in value.items():
        if len(k) > 64:
            raise InvalidRequest(f"metadata key {k[:20]!r}… is over 64 chars.", param="metadata")
        if not isinstance(v, str) or len(v) > 512:
            raise InvalidRequest(
                f"metadata[{k!r}] must be a string of at most 512 chars.", param="metadata"
            )
    return value


def _output_expiry(value: Any) -> int | None:
    if value is None:
        return None
    seconds = value.get("seconds") if isinstance(value, dict) else None
    if (
        not isinstance(value, dict)
        or value.get("anchor") != "created_at"
        or not isinstance(seconds, int)
        or not 3600 <= seconds <= 2_592_000
    ):
        raise InvalidRequest(
            "output_expires_after must be {'anchor': 'created_at', 'seconds': 3600…2592000}.",
            param="output_expires_after",
        )
    return seconds
