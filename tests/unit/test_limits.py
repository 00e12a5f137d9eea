"""Rate budgets and adaptive concurrency with a fake clock (batchgate.engine.limits)."""

from __future__ import annotations

import pytest

from batchgate.engine.limits import AdaptiveLimit, TokenBucket


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- TokenBucket ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_minute", "burst_seconds", "capacity"),
    [(600, 10.0, 100.0), (60, 10.0, 10.0), (6, 10.0, 1.0), (1, 10.0, 1.0), (600, 60.0, 600.0)],
)
def test_capacity(per_minute: float, burst_seconds: float, capacity: float) -> None:
    bucket = TokenBucket(per_minute, burst_seconds=burst_seconds, clock=FakeClock())
    assert bucket.capacity == capacity
    assert bucket.available == capacity  # starts full


# 600/min = 10/s, capacity 100: (steps of (advance, reserve amount, expected wait))
WAIT_CASES: list[tuple[str, list[tuple[float, float, float]]]] = [
    ("covered", [(0, 60, 0.0), (0, 40, 0.0)]),
    ("first debt", [(0, 100, 0.0), (0, 10, 1.0)]),
    ("debt accumulates", [(0, 100, 0.0), (0, 10, 1.0), (0, 10, 2.0), (0, 30, 5.0)]),
    ("refill pays debt", [(0, 100, 0.0), (0, 50, 5.0), (5, 10, 1.0)]),
    ("partial refill", [(0, 100, 0.0), (2, 30, 1.0)]),
    ("refill capped at capacity", [(0, 100, 0.0), (3600, 100, 0.0), (0, 10, 1.0)]),
    ("larger than capacity", [(0, 250, 15.0)]),
    ("zero amount", [(0, 100, 0.0), (0, 0, 0.0)]),
    ("clock going back is ignored", [(0, 100, 0.0), (-50, 10, 1.0)]),
]


@pytest.mark.parametrize(("name", "steps"), WAIT_CASES, ids=[c[0] for c in WAIT_CASES])
def test_reserve_waits(name: str, steps: list[tuple[float, float, float]]) -> None:
    clock = FakeClock()
    bucket = TokenBucket(600, clock=clock)
    for advance, amount, wait in steps:
        clock.advance(advance)
        assert bucket.reserve(amount) == pytest.approx(wait)


def test_debt_is_visible_and_repaid() -> None:
    clock = FakeClock()
    bucket = TokenBucket(600, clock=clock)
    wait = bucket.reserve(130)
    assert wait == pytest.approx(3.0)
    assert bucket.available == pytest.approx(-30)
    clock.advance(wait)
    assert bucket.available == pytest.approx(0)
    assert bucket.reserve(0) == 0.0


@pytest.mark.parametrize(
    ("reserve", "refund", "expected"),
    [(50, 20, 70), (50, 50, 100), (50, 500, 100), (130, 40, 10), (0, 10, 100), (50, -5, 50)],
)
def test_refund_is_capped(reserve: float, refund: float, expected: float) -> None:
    bucket = TokenBucket(600, clock=FakeClock())
    bucket.reserve(reserve)
    bucket.refund(refund)
    assert bucket.available == pytest.approx(expected)


def test_refund_shortens_the_next_wait() -> None:
    bucket = TokenBucket(600, clock=FakeClock())
    bucket.reserve(100)
    assert bucket.reserve(20) == pytest.approx(2.0)
    bucket.refund(20)
    assert bucket.reserve(10) == pytest.approx(1.0)


@pytest.mark.parametrize("per_minute", [0, -1, 0.0])
def test_unlimited(per_minute: float) -> None:
    clock = FakeClock()
    bucket = TokenBucket(per_minute, clock=clock)
    assert bucket.unlimited
    for _ in range(1000):
        assert bucket.reserve(1_000_000) == 0.0
    bucket.refund(5)


def test_limited_is_not_unlimited() -> None:
    assert not TokenBucket(1, clock=FakeClock()).unlimited


# --- AdaptiveLimit -------------------------------------------------------------------------------


def test_starts_at_max() -> None:
    assert AdaptiveLimit(64, clock=FakeClock()).limit == 64


def test_success_at_max_stays() -> None:
    limit = AdaptiveLimit(8, clock=FakeClock())
    for _ in range(100):
        limit.on_success()
    assert limit.limit == 8


@pytest.mark.parametrize(
    ("max_limit", "decrease", "overloads", "expected"),
    [
        (100, 0.7, 1, 70),
        (100, 0.5, 1, 50),
        (100, 0.5, 2, 25),
        (100, 0.5, 3, 12),
        (10, 0.7, 1, 7),
        (10, 0.7, 20, 1),  # floored at min_limit
    ],
)
def test_multiplicative_decrease(
    max_limit: int, decrease: float, overloads: int, expected: int
) -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(max_limit, decrease=decrease, cooldown=1.0, clock=clock)
    for _ in range(overloads):
        limit.on_overload()
        clock.advance(1.0)
    assert limit.limit == expected


def test_cooldown_counts_a_burst_once() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(100, decrease=0.5, cooldown=2.0, clock=clock)
    limit.on_overload()
    for _ in range(32):  # a burst of failures over 0.5 s (binary fractions: exact sums)
        clock.advance(1 / 64)
        limit.on_overload()
    assert limit.limit == 50
    clock.advance(1.375)  # 1.875 s after the first decrease: still cooling down
    limit.on_overload()
    assert limit.limit == 50
    clock.advance(0.125)
    limit.on_overload()
    assert limit.limit == 25


def test_additive_increase() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(20, decrease=0.5, clock=clock)
    limit.on_overload()
    assert limit.limit == 10
    # about one full window of successes (one per slot) raises the limit by one
    for _ in range(9):
        limit.on_success()
    assert limit.limit == 10
    for _ in range(2):
        limit.on_success()
    assert limit.limit == 11  # ~+1/limit each: 11 successes at ~10 add just over one
    for _ in range(200):
        limit.on_success()
    assert limit.limit == 20  # never above max


def test_min_limit_floor() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(10, min_limit=4, decrease=0.1, cooldown=0.0, clock=clock)
    limit.on_overload()
    assert limit.limit == 4
    limit.on_overload()
    assert limit.limit == 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_limit": 0},
        {"max_limit": 5, "min_limit": 6},
        {"max_limit": 5, "min_limit": 0},
        {"max_limit": 5, "decrease": 1.0},
        {"max_limit": 5, "decrease": 0.0},
    ],
)
def test_invalid_arguments(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AdaptiveLimit(**kwargs)  # type: ignore[arg-type]
