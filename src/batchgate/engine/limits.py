"""Per-upstream rate budgets (token buckets) and adaptive (AIMD) concurrency.

Pure state machines with an injected clock: they compute waits and limits, they never sleep.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["AdaptiveLimit", "TokenBucket"]


class TokenBucket:
    """A budget of ``per_minute`` units refilled continuously, holding ``burst_seconds`` of it.

    Reservations debit at once and may drive the balance negative (debt); the returned wait is
    the time until the debt is repaid, so concurrent callers queue fairly. ``per_minute <= 0``
    means unlimited.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        burst_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.capacity = max(1.0, per_minute * burst_seconds / 60.0)
        self._rate = per_minute / 60.0  # units per second
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()

    @property
    def unlimited(self) -> bool:
        return self.per_minute <= 0

    @property
    def available(self) -> float:
        """The balance now (negative while in debt)."""
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self._rate)

    def reserve(self, amount: float) -> float:
        """Debit ``amount`` now; return the seconds to wait before sending (0 if covered)."""
        if self.unlimited:
            return 0.0
        self._refill()
        self._tokens -= max(0.0, amount)
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

    def refund(self, amount: float) -> None:
        """Credit back an over-estimate; the balance never rises above capacity."""
        if self.unlimited:
            return
        self._refill()
        self._tokens = min(self.capacity, self._tokens + max(0.0, amount))


class AdaptiveLimit:
    """AIMD concurrency: +1/limit per success (additive), times ``decrease`` on overload at most
    once per cooldown. Starts at ``max_limit``."""

    def __init__(
        self,
        max_limit: int,
        *,
        min_limit: int = 1,
        decrease: float = 0.7,
        cooldown: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= min_limit <= max_limit:
            raise ValueError(f"need 1 <= min_limit <= max_limit, got {min_limit} and {max_limit}")
        if not 0.0 < decrease < 1.0:
            raise ValueError(f"decrease must be between 0 and 1 (exclusive), got {decrease}")
        self.max_limit = max_limit
        self.min_limit = min_limit
        self.decrease = decrease
        self.cooldown = cooldown
        self._clock = clock
        self._value = float(max_limit)
        self._last_decrease: float | None = None

    @property
    def limit(self) -> int:
        return min(self.max_limit, max(self.min_limit, math.floor(self._value)))

    def on_success(self) -> None:
        self._value = min(float(self.max_limit), self._value + 1.0 / self._value)

    def on_overload(self) -> None:
        now = self._clock()
        if self._last_decrease is not None and now - self._last_decrease < self.cooldown:
            return  # one overload burst counts once: in-flight requests all fail together
        self._last_decrease = now
        self._value = max(float(self.min_limit), self._value * self.decrease)
