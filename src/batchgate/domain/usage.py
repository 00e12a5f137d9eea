"""Usage per tenant over a time range: the range's bounds as a caller writes them, and one
group's totals as the API and ``batchgate usage --json`` show them.

A range is ``[start, end)`` in whole Unix seconds, over when each request finished; the
default is the last 24 hours.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from batchgate.domain.cost import usd
from batchgate.domain.records import UsageGroup
from batchgate.errors import InvalidRequest

__all__ = ["DAY", "parse_time", "time_range", "usage_entry", "usage_object"]

DAY = 86_400
_YEAR_10000 = 253_402_300_800


def parse_time(text: str, param: str) -> int:
    """Unix seconds, an RFC 3339 time (``2026-12-01T10:00:00Z``; no offset means UTC) or a
    date (its midnight UTC), as whole Unix seconds (a fraction is dropped)."""
    raw = text.strip()
    try:
        if raw.lstrip("-").replace(".", "", 1).isdigit() and raw.isascii():
            seconds = float(raw)
        else:
            when = datetime.fromisoformat(raw)  # a date alone is its midnight
            seconds = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
        if not 0 <= seconds < _YEAR_10000:
            raise ValueError(raw)
    except (ValueError, OverflowError):
        raise InvalidRequest(
            f"Invalid '{param}': expected Unix seconds or an RFC 3339 time such as "
            f"2026-12-01T10:00:00Z, got {text!r}.",
            param=param, code="invalid_value",
        ) from None  # fmt: skip
    return math.floor(seconds)


def time_range(
    start: str | None, end: str | None, now: float, *, names: tuple[str, str] = ("start", "end")
) -> tuple[int, int]:
    """``[start, end)`` from optional bounds: ``end`` defaults to now (this second included),
    ``start`` to a day before ``end``; an empty or reversed range is refused. ``names``: the
    bounds' names as the caller wrote them, for the error."""
    hi = parse_time(end, names[1]) if end is not None else math.floor(now) + 1
    lo = parse_time(start, names[0]) if start is not None else hi - DAY
    if hi <= lo:
        raise InvalidRequest(
            f"Invalid '{names[1]}': it must be after '{names[0]}' (the range is "
            f"[{names[0]}, {names[1]})), got {lo} and {hi}.",
            param=names[1], code="invalid_value",
        )  # fmt: skip
    return lo, hi


def usage_object(
    start: int, end: int, groups: list[UsageGroup], *, by_model: bool
) -> dict[str, Any]:
    """The answer of ``GET /v1/usage`` (and ``batchgate usage --json``)."""
    data = [usage_entry(g, by_model=by_model) for g in groups]
    return {"object": "usage", "start": start, "end": end, "data": data}


def usage_entry(row: UsageGroup, *, by_model: bool) -> dict[str, Any]:
    """One group of ``Store.usage`` as shown: counts, tokens and its ``cost`` object."""
    ticks = row.cost_ticks
    entry: dict[str, Any] = {"tenant": row.tenant}
    if by_model:
        entry["model"] = row.model
    entry.update(
        requests=row.requests, succeeded=row.succeeded, failed=row.failed,
        input_tokens=row.input_tokens, output_tokens=row.output_tokens,
        cost={"ticks": ticks, "usd": usd(ticks), "priced": not row.unpriced},
    )  # fmt: skip
    return entry
