"""A retry is a decision value: ``decide(outcome, attempts, policy)`` → Retry, GiveUp or None.

Pure and clock-free; ``Retry-After`` first, then capped exponential backoff with jitter.

What a row's ``max_attempts`` counts: only real failures (500, 502, 504, 408, 409, a refused
or dropped connection, a timeout, a malformed reply). An upstream that says it is rate limited
or overloaded (429, 503, 529) has not failed the request: the row is retried after its
``Retry-After`` (uncharged: ``Retry.charged`` is False) for as long as its batch's completion
window allows, when the expiry sweep ends it. The one 429 that is final is OpenAI's
``insufficient_quota`` (the account is out of credit: waiting does not help). Nor is a failure
charged that meets a lane whose circuit is open (``held``: the upstream is down, see
``engine/circuit.py``).
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "OVERLOAD_STATUSES",
    "RETRYABLE_STATUSES",
    "UNAVAILABLE_STATUSES",
    "Decision",
    "GiveUp",
    "Outcome",
    "Retry",
    "RetryPolicy",
    "decide",
    "is_overload",
    "is_unavailable",
    "parse_retry_after",
]

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
OVERLOAD_STATUSES = frozenset({429, 503, 529})  # the lane backs off on these; never charged
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})  # with no answer at all: an outage's signs
QUOTA_CODES = frozenset({"insufficient_quota"})  # a 429 that waiting does not cure

# The GiveUp code once retries of a failure kind are exhausted.
_EXHAUSTED_CODES = {
    "http": "upstream_error",
    "connect": "upstream_unreachable",
    "timeout": "request_timeout",
    "malformed": "malformed_response",
}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry; ``instant()`` makes every wait zero for tests."""

    max_attempts: int = 5  # total sends including the first
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.25  # up to this fraction of the backoff is subtracted
    max_retry_after: float = 300.0  # a Retry-After above this is clamped to it

    @classmethod
    def instant(cls, max_attempts: int = 5) -> RetryPolicy:
        return cls(
            max_attempts=max_attempts,
            base_delay=0.0,
            max_delay=0.0,
            jitter=0.0,
            max_retry_after=0.0,
        )

    def backoff(self, attempts: int, rng: random.Random | None = None) -> float:
        """The wait after the ``attempts``-th send when the upstream gave no Retry-After."""
        exponent = min(max(attempts - 1, 0), 62)  # bounded: 2**62 already exceeds any max_delay
        delay = min(self.max_delay, self.base_delay * 2.0**exponent)
        spread = (rng or random).random() * self.jitter
        return max(0.0, delay * (1.0 - spread))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one upstream attempt produced."""

    status: int | None  # HTTP status, None when no response
    kind: str = "http"  # "http" | "connect" | "timeout" | "malformed" (2xx body not JSON)
    retry_after: float | None = None  # seconds, parsed from headers
    message: str = ""
    code: str | None = None  # the upstream's own error code, where its answer had one


@dataclass(frozen=True, slots=True)
class Retry:
    delay: float
    reason: str
    charged: bool = True  # False: this send does not count against max_attempts


@dataclass(frozen=True, slots=True)
class GiveUp:
    """``code``: upstream_error, request_timeout, upstream_unreachable, malformed_response or
    max_attempts_exceeded (a failure of an unknown kind)."""

    code: str
    message: str


Decision = Retry | GiveUp


def _describe(outcome: Outcome) -> str:
    head = f"HTTP {outcome.status}" if outcome.kind == "http" else outcome.kind
    return f"{head}: {outcome.message}" if outcome.message else head


def _is_success(outcome: Outcome) -> bool:
    return outcome.kind == "http" and outcome.status is not None and 200 <= outcome.status < 300


def is_overload(outcome: Outcome) -> bool:
    """The upstream said it is rate limited or overloaded (not a failure of the request)."""
    return (
        outcome.kind == "http"
        and outcome.status in OVERLOAD_STATUSES
        and outcome.code not in QUOTA_CODES
    )


def is_unavailable(outcome: Outcome) -> bool:
    """No answer at all, or a gateway's word that the upstream behind it is not there: what a
    run of makes a lane's circuit open."""
    if outcome.kind in ("connect", "timeout"):
        return True
    return outcome.kind == "http" and outcome.status in UNAVAILABLE_STATUSES


def _is_retryable(outcome: Outcome) -> bool:
    if outcome.kind != "http" or outcome.status is None:
        return True  # no usable answer: connect, timeout, malformed
    return outcome.status in RETRYABLE_STATUSES or outcome.status >= 500


def _exhausted_code(outcome: Outcome) -> str:
    if outcome.kind == "http" and outcome.status is None:
        return "upstream_unreachable"
    return _EXHAUSTED_CODES.get(outcome.kind, "max_attempts_exceeded")


def _delay(
    outcome: Outcome, attempts: int, policy: RetryPolicy, rng: random.Random | None
) -> float:
    if outcome.retry_after is not None:
        return min(max(outcome.retry_after, 0.0), policy.max_retry_after)
    return policy.backoff(attempts, rng)


def decide(
    outcome: Outcome,
    attempts: int,
    policy: RetryPolicy,
    rng: random.Random | None = None,
    *,
    held: bool = False,
) -> Decision | None:
    """None on success; otherwise retry after a delay, or give up with a result code.

    ``attempts`` counts the sends made so far, this one included (an uncharged one too: the
    caller takes it back when it records the retry). ``held``: the lane's circuit is open, so
    an outage's failure is retried uncharged, at once (the circuit paces the lane).
    """
    if _is_success(outcome):
        return None
    reason = _describe(outcome)
    if outcome.kind == "http" and outcome.code in QUOTA_CODES:
        return GiveUp("upstream_error", f"Upstream answered {reason} (out of quota).")
    if held and is_unavailable(outcome):
        return Retry(0.0, reason, charged=False)
    if is_overload(outcome):
        return Retry(_delay(outcome, attempts, policy, rng), reason, charged=False)
    if not _is_retryable(outcome):
        return GiveUp("upstream_error", f"Upstream answered {reason} (not retryable).")
    if attempts >= policy.max_attempts:
        return GiveUp(
            _exhausted_code(outcome), f"Gave up after {attempts} attempts; last: {reason}."
        )
    return Retry(_delay(outcome, attempts, policy, rng), reason)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, candidate in headers.items():  # a plain dict with other casing
        if key.lower() == name:
            return candidate
    return None


def _seconds(text: str | None, scale: float = 1.0) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip()) * scale
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _date_delta(text: str | None, now: float | None) -> float | None:
    if text is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None  # HTTP dates are always GMT; a zone-less date is not one
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, else ``retry-after`` (seconds or an HTTP date).

    Header names match case-insensitively; negative or unparseable values give None, and a
    date already past gives 0.
    """
    millis = _seconds(_header(headers, "retry-after-ms"), scale=0.001)
    if millis is not None:
        return millis
    text = _header(headers, "retry-after")
    seconds = _seconds(text)
    return seconds if seconds is not None else _date_delta(text, now)
