"""The rate budgets an upstream announces in its answers' headers, as ``Budget`` values.

* OpenAI (and servers copying it): ``x-ratelimit-limit-<budget>``, ``-remaining-<budget>`` and
  ``-reset-<budget>`` for the ``requests`` and ``tokens`` budgets; the reset is a duration in
  Go's style (``1s``, ``6m0s``, ``59.5s``, ``120ms``, ``1h2m3s``).
* Anthropic: ``anthropic-ratelimit-<budget>-limit``, ``-remaining`` and ``-reset`` for
  ``requests``, ``tokens``, ``input-tokens`` and ``output-tokens``; the reset is an RFC 3339
  time.

Header names are lower-cased by the transports. A budget without a usable ``remaining`` is left
out; a missing or unparseable limit or reset is None.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from datetime import datetime

from batchgate.providers.base import Budget

__all__ = ["anthropic_budgets", "openai_budgets", "parse_duration", "parse_reset_time"]

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|h|m|s)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_OPENAI_BUDGETS = ("requests", "tokens")
ANTHROPIC_BUDGETS = ("requests", "tokens", "input-tokens", "output-tokens")


def parse_duration(text: str | None) -> float | None:
    """Seconds in a Go-style duration (``6m0s``, ``1.5s``, ``20ms``) or a bare number of
    seconds; None when it is neither."""
    if text is None:
        return None
    text = text.strip()
    number = _number(text)
    if number is not None:
        return number
    total, at = 0.0, 0
    for match in _PART.finditer(text):
        if match.start() != at:
            return None
        total += float(match.group(1)) * _UNIT[match.group(2)]
        at = match.end()
    return total if at == len(text) and at > 0 else None


def parse_reset_time(text: str | None, now: float | None = None) -> float | None:
    """Seconds from ``now`` until an RFC 3339 time (0 when it is past); None if unparseable."""
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if at.tzinfo is None:
        return None
    return max(0.0, at.timestamp() - (time.time() if now is None else now))


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def openai_budgets(headers: Mapping[str, str]) -> tuple[Budget, ...]:
    found = []
    for name in _OPENAI_BUDGETS:
        remaining = _number(headers.get(f"x-ratelimit-remaining-{name}"))
        if remaining is None:
            continue
        limit = _number(headers.get(f"x-ratelimit-limit-{name}"))
        reset = parse_duration(headers.get(f"x-ratelimit-reset-{name}"))
        found.append(Budget(name, limit, remaining, reset))
    return tuple(found)


def anthropic_budgets(headers: Mapping[str, str], now: float | None = None) -> tuple[Budget, ...]:
    found = []
    for name in ANTHROPIC_BUDGETS:
        remaining = _number(headers.get(f"anthropic-ratelimit-{name}-remaining"))
        if remaining is None:
            continue
        limit = _number(headers.get(f"anthropic-ratelimit-{name}-limit"))
        reset = parse_reset_time(headers.get(f"anthropic-ratelimit-{name}-reset"), now)
        found.append(Budget(name, limit, remaining, reset))
    return tuple(found)
