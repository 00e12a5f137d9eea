"""Per-upstream rate budgets (token buckets), the budgets an upstream announces in its headers,
and adaptive concurrency that tells scattered 429s from real overload.

Pure state machines with an injected clock: they compute waits and limits, they never sleep.

**The overload rule** (``AdaptiveLimit``). Hosted APIs answer a few percent of requests with 429
all day long; that is not congestion, and cutting concurrency on each one settles a lane near
its floor. So single answers decide nothing: every answer of the lane is counted in a sliding
window (the last ``window`` seconds, in quarter buckets), and

* the lane is **overloaded** when more than ``threshold`` (15 %, three times the 5 % of random
  429s a hosted API may answer all day) of the answers in the window were overload answers
  (429, 503, 529), and the window holds at least ``min_samples`` answers (20) and two per slot
  of the current limit (429s come back at once, successes only after the upstream's latency,
  so the first answers of a round over-count them). Then the limit is multiplied by
  ``decrease`` (0.75), at most once per ``cooldown`` (0.5 s, about the time a cut takes to
  show), and the window is cleared so the next decision is made on answers sent at the new
  limit;
* below ``grow_below`` (5 %), each success adds ``1 / limit`` (additive increase, about +1 per
  round trip of the whole lane); between that and the threshold the limit holds.

A row that met a 429 or 503 is delayed on its own (``Retry-After``: see ``engine/retry.py``)
whatever the window says; a runner that meets overload answers back to back backs off itself
(``RunnerBackoff``), so the few runners above an upstream's real capacity do not hammer it
while the window decides.

**Announced budgets** (``HeaderBudget``). OpenAI's ``x-ratelimit-{limit,remaining,reset}-*``
and Anthropic's ``anthropic-ratelimit-*`` headers say how much of a budget is left and when it
is full again; from them the refill rate follows, ``(size - remaining) / reset``. The
lane keeps a token bucket of that rate and capacity, whose balance each answer lowers to what
the upstream says is left less what is in flight, and paces its sends to it: it slows down
before the upstream says no.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from batchgate.providers.base import Budget

__all__ = ["AdaptiveLimit", "Budget", "HeaderBudget", "RunnerBackoff", "TokenBucket"]

Clock = Callable[[], float]
# A spent announced budget whose refill rate is not known yet holds sends this long after the
# last answer that announced it (that answer's successors will tell the rate), then lets go.
_UNKNOWN_RATE_WAIT = 2.0


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
        clock: Clock = time.monotonic,
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
    """Concurrency decided from the share of overload answers over a sliding window (the rule
    is in the module docstring). Starts at ``max_limit``."""

    def __init__(
        self,
        max_limit: int,
        *,
        min_limit: int = 1,
        decrease: float = 0.75,
        cooldown: float = 0.5,
        window: float = 2.0,
        threshold: float = 0.15,
        grow_below: float = 0.05,
        min_samples: int = 20,
        clock: Clock = time.monotonic,
    ) -> None:
        if not 1 <= min_limit <= max_limit:
            raise ValueError(f"need 1 <= min_limit <= max_limit, got {min_limit} and {max_limit}")
        if not 0.0 < decrease < 1.0:
            raise ValueError(f"decrease must be between 0 and 1 (exclusive), got {decrease}")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1 (exclusive), got {threshold}")
        self.max_limit = max_limit
        self.min_limit = min_limit
        self.decrease = decrease
        self.cooldown = cooldown
        self.threshold = threshold
        self.grow_below = min(grow_below, threshold)
        self.min_samples = min_samples
        self._clock = clock
        self._value = float(max_limit)
        self._last_decrease: float | None = None
        self._bucket_s = window / 4
        self._buckets: deque[list[float]] = deque()  # [start, answers, overloads]
        self._answers = 0
        self._overloads = 0

    @property
    def limit(self) -> int:
        return min(self.max_limit, max(self.min_limit, math.floor(self._value)))

    @property
    def share(self) -> float:
        """The overload share of the answers in the window now (0 when it is empty)."""
        self._expire(self._clock())
        return self._overloads / self._answers if self._answers else 0.0

    def on_answer(self, overloaded: bool) -> None:
        """Count one answer of the upstream (any answer: success, error or overload)."""
        now = self._clock()
        self._count(now, overloaded)
        share = self._overloads / self._answers
        enough = self._answers >= max(self.min_samples, 2 * self.limit)
        if share > self.threshold and enough:
            if self._last_decrease is None or now - self._last_decrease >= self.cooldown:
                self._last_decrease = now
                self._value = max(float(self.min_limit), self._value * self.decrease)
                self._buckets.clear()
                self._answers = self._overloads = 0
        elif not overloaded and share < self.grow_below:
            self._value = min(float(self.max_limit), self._value + 1.0 / self._value)

    def on_success(self) -> None:
        self.on_answer(False)

    def on_overload(self) -> None:
        self.on_answer(True)

    def _count(self, now: float, overloaded: bool) -> None:
        self._expire(now)
        if not self._buckets or now - self._buckets[-1][0] >= self._bucket_s:
            self._buckets.append([now, 0, 0])
        last = self._buckets[-1]
        last[1] += 1
        self._answers += 1
        if overloaded:
            last[2] += 1
            self._overloads += 1

    def _expire(self, now: float) -> None:
        horizon = now - 4 * self._bucket_s
        while self._buckets and self._buckets[0][0] < horizon:
            _, answers, overloads = self._buckets.popleft()
            self._answers -= int(answers)
            self._overloads -= int(overloads)


class RunnerBackoff:
    """One runner's own pause after overload answers back to back: none after the first (a
    scattered 429 costs the runner nothing), then ``base`` doubling up to ``cap`` while they
    keep coming; a success resets it."""

    __slots__ = ("base", "cap", "streak")

    def __init__(self, base: float = 0.1, cap: float = 1.0) -> None:
        self.base, self.cap, self.streak = base, cap, 0

    def after(self, overloaded: bool) -> float:
        """The seconds to wait before the runner's next send."""
        if not overloaded:
            self.streak = 0
            return 0.0
        self.streak += 1
        if self.streak < 2:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(self.streak - 2, 30))


class HeaderBudget:
    """A bucket learned from one announced budget (see the module docstring): its refill rate
    from ``(size - remaining) / reset``, smoothed over answers; its balance lowered on every
    answer to the announced remainder less the units in flight, never raised by one (the
    refill does that), so several workers on one key each stay below what is left."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.rate: float | None = None  # units per second, once learned
        self._capacity = math.inf
        self._level = math.inf
        self._seen = 0.0  # the most ever left + 1
        self._observed = -math.inf  # when an answer last announced this budget
        self._updated = clock()

    def observe(self, budget: Budget, in_flight: float) -> None:
        # The bucket's size: the announced limit, or less where the answers show it never
        # holds that much (an upstream whose limit is per minute but whose burst is smaller);
        # a bucket seen full once (remaining + 1 right after a send) shows its size.
        self._seen = max(self._seen, budget.remaining + 1)
        size = min(budget.limit, self._seen) if budget.limit else None
        rate = self._rate_of(size, budget)
        if rate is not None:
            self.rate = rate if self.rate is None else 0.8 * self.rate + 0.2 * rate
        self._refill()
        self._observed = self._clock()
        if size:
            self._capacity = size
        self._level = min(self._level, self._capacity, budget.remaining - in_flight)

    @staticmethod
    def _rate_of(size: float | None, budget: Budget) -> float | None:
        if size is None or budget.reset is None or budget.reset <= 0:
            return None
        used = size - budget.remaining
        if used < 2:
            return None  # (nearly) full, or the size not yet seen: too little to go by
        return used / budget.reset

    def _refill(self) -> None:
        now = self._clock()
        if self.rate is not None and math.isfinite(self._level):
            elapsed = max(0.0, now - self._updated)
            self._level = min(self._capacity, self._level + elapsed * self.rate)
        self._updated = now

    @property
    def available(self) -> float:
        self._refill()
        return self._level

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` units are there (0: now, or nothing was learned yet: then
        the upstream's own 429s and Retry-After are all there is to go by). Callers sleep a
        little and ask again rather than reserve ahead: the rate is an estimate that the
        next answers may correct."""
        self._refill()
        if not math.isfinite(self._level) or self._level >= amount:
            return 0.0
        if self.rate is None:  # spent, refill rate not known yet: the next answers may say
            return 0.05 if self._clock() - self._observed < _UNKNOWN_RATE_WAIT else 0.0
        return (amount - self._level) / self.rate

    def take(self, amount: float) -> None:
        """Debit ``amount`` units (sent now)."""
        self._refill()
        if math.isfinite(self._level):
            self._level -= amount

    def refund(self, amount: float) -> None:
        self._refill()
        if math.isfinite(self._level):
            self._level = min(self._capacity, self._level + amount)
