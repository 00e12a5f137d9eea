"""What a retry asks for: the body of ``POST …/batches/{id}/retry`` and ``POST
/qai/v1/batch/retry``, and how a retry batch names the batch it retries (``retry_of`` in its
metadata). Pure: the service makes the new batch (``service/retry.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from batchgate.domain.budget import BUDGET_FIELD, parse_budget_usd
from batchgate.errors import InvalidRequest

__all__ = ["CODES_FIELD", "MAX_CODES", "RETRY_OF", "RetryAsk", "parse_retry", "retry_of"]

RETRY_OF = "retry_of"  # the metadata key (and Anthropic extension field) naming the parent
CODES_FIELD = "error_codes"
MAX_CODES = 100


@dataclass(frozen=True, slots=True)
class RetryAsk:
    """Which ended rows to send again (None: every one that ended without a result) and the
    budget of the new batch (None: the retried batch's own)."""

    codes: frozenset[str] | None = None
    budget_ticks: int | None = None


def parse_retry(body: Any, *, allowed: tuple[str, ...] = ()) -> RetryAsk:
    """A retry body: ``{"error_codes": ["upstream_error", …], "budget_usd": 5}``, both
    optional (an empty body retries every failed line under the old budget). ``allowed``
    names more fields the caller reads itself."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object (or empty).")
    known = (CODES_FIELD, BUDGET_FIELD, *allowed)
    for name in body:
        if name not in known:
            raise InvalidRequest(
                f"{name}: unknown field; a retry takes {', '.join(known)}.", param=name
            )
    codes = body.get(CODES_FIELD)
    if codes is not None and (
        not isinstance(codes, list)
        or not codes
        or len(codes) > MAX_CODES
        or not all(isinstance(c, str) and c for c in codes)
    ):
        raise InvalidRequest(
            f"{CODES_FIELD}: expected a list of 1 to {MAX_CODES} error codes (strings such as "
            "'upstream_error'), or nothing to retry every failed request.",
            param=CODES_FIELD, code="invalid_value",
        )  # fmt: skip
    return RetryAsk(
        frozenset(codes) if codes is not None else None, parse_budget_usd(body.get(BUDGET_FIELD))
    )


def retry_metadata(metadata: str | None, parent: str) -> str:
    """A batch's metadata (JSON text or None) with ``retry_of`` set to ``parent``."""
    try:
        doc = orjson.loads(metadata) if metadata else {}
    except orjson.JSONDecodeError:
        doc = {}
    base = doc if isinstance(doc, dict) else {}
    return orjson.dumps({**base, RETRY_OF: parent}).decode()


def retry_of(metadata: str | None) -> str | None:
    """The batch a batch retries, from its metadata (None: it is no retry)."""
    if not metadata:
        return None
    try:
        doc = orjson.loads(metadata)
    except orjson.JSONDecodeError:
        return None
    parent = doc.get(RETRY_OF) if isinstance(doc, dict) else None
    return parent if isinstance(parent, str) else None
