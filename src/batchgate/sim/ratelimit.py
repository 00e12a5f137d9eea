"""The simulator's per-key requests-per-minute limit: a token bucket per API key, and the rate
headers real upstreams send with every answer, so that clients which read them (instead of
waiting for a 429) can be tested and benchmarked. Clock-injectable, transport-free."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

MAX_KEYS = 10_000
_EPSILON = 1e-9  # refill arithmetic in floats: 0.999999999 tokens counts as one


def format_duration(seconds: float) -> str:
    """``seconds`` in OpenAI's ``x-ratelimit-reset-*`` format (Go's duration style), rounded
    up to the millisecond so that a client waiting this long is never early: ``120ms``,
    ``1s``, ``59.5s``, ``6m0s``, ``1h2m3s``; ``0s`` for nothing to wait."""
    millis = max(0, math.ceil(seconds * 1000 - _EPSILON))
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, fraction = divmod(rest, 1000)
    secs = f"{whole}.{fraction:03d}".rstrip("0") if fraction else str(whole)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def format_rfc3339(epoch: float) -> str:
    """The UTC time ``epoch`` as RFC 3339 in whole seconds, rounded up (as Anthropic's
    ``anthropic-ratelimit-*-reset`` headers are): ``2025-01-02T03:04:05Z``."""
    moment = datetime.fromtimestamp(math.ceil(epoch - _EPSILON), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Decision(NamedTuple):
    """One request's outcome: ``allowed``; ``remaining`` whole tokens left after it;
    ``retry_after`` seconds until one token is back (0 when allowed); ``reset`` seconds until
    the bucket is full again; ``now`` the wall-clock time (epoch seconds) it was taken at."""

    allowed: bool
    remaining: int
    retry_after: float
    reset: float
    now: float


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """Token buckets per key: each holds up to ``capacity`` requests (``burst``, or a full
    minute's worth, ``limit``, when burst is 0) and refills at ``limit / 60`` per second; a
    new key starts full. At most ``max_keys`` buckets are kept, the least recently used
    dropped first (an idle bucket refills to full anyway, so dropping it loses little).
    ``clock`` is monotonic seconds (the refill), ``wall`` epoch seconds (for RFC 3339 resets).
    """

    def __init__(
        self,
        limit: int,
        burst: float = 0.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if limit <= 0:
            raise ValueError("limit must be positive")
        self.limit = limit
        self.burst = burst
        self.capacity = float(burst) if burst else float(limit)
        self._rate = limit / 60.0
        self._clock = clock
        self._wall = wall
        self._max_keys = max_keys
        self._buckets: dict[bytes, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def clear(self) -> None:
        """Forget every key: all buckets start full again."""
        self._buckets.clear()

    def take(self, key: bytes) -> Decision:
        """Take one token from ``key``'s bucket if it has one."""
        now = self._clock()
        buckets = self._buckets
        bucket = buckets.pop(key, None)  # re-inserted below: the dict is in LRU order
        if bucket is None:
            bucket = _Bucket(self.capacity, now)
            if len(buckets) >= self._max_keys:
                del buckets[next(iter(buckets))]
        else:
            refilled = bucket.tokens + (now - bucket.stamp) * self._rate
            bucket.tokens = min(self.capacity, refilled)
            bucket.stamp = now
        buckets[key] = bucket
        allowed = bucket.tokens + _EPSILON >= 1.0
        if allowed:
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            retry_after = 0.0
        else:
            retry_after = (1.0 - bucket.tokens) / self._rate
        tokens = bucket.tokens
        return Decision(
            allowed,
            int(tokens + _EPSILON),
            retry_after,
            (self.capacity - tokens) / self._rate,
            self._wall(),
        )


def openai_headers(limit: int, decision: Decision) -> bytes:
    """OpenAI's request-budget headers for one answer (each line ends in CRLF)."""
    return (
        f"x-ratelimit-limit-requests: {limit}\r\n"
        f"x-ratelimit-remaining-requests: {decision.remaining}\r\n"
        f"x-ratelimit-reset-requests: {format_duration(decision.reset)}\r\n"
    ).encode()


def anthropic_headers(limit: int, decision: Decision) -> bytes:
    """Anthropic's request-budget headers for one answer; the reset is the time when the
    bucket is full again, as Anthropic's is."""
    return (
        f"anthropic-ratelimit-requests-limit: {limit}\r\n"
        f"anthropic-ratelimit-requests-remaining: {decision.remaining}\r\n"
        f"anthropic-ratelimit-requests-reset: {format_rfc3339(decision.now + decision.reset)}\r\n"
    ).encode()


def retry_headers(seconds: float) -> bytes:
    """``retry-after`` in whole seconds (the HTTP form, rounded up, at least 1) and
    ``retry-after-ms`` (rounded up), for a request rejected by the limit."""
    millis = max(1, math.ceil(seconds * 1000 - _EPSILON))
    return f"retry-after: {math.ceil(millis / 1000)}\r\nretry-after-ms: {millis}\r\n".encode()
