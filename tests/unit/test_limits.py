"""Rate budgets and adaptive concurrency with a fake clock (batchgate.engine.limits)."""

from __future__ import annotations

import pytest

from batchgate.engine.limits import AdaptiveLimit, HeaderBudget, RunnerBackoff, TokenBucket
from batchgate.providers.base import Budget


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


# --- AdaptiveLimit: the sliding-window overload rule ---------------------------------------------


def test_starts_at_max() -> None:
    assert AdaptiveLimit(64, clock=FakeClock()).limit == 64


def test_success_at_max_stays() -> None:
    limit = AdaptiveLimit(8, clock=FakeClock())
    for _ in range(100):
        limit.on_success()
    assert limit.limit == 8


def _answers(limit: AdaptiveLimit, clock: FakeClock, n: int, every: int, dt: float) -> None:
    """``n`` answers ``dt`` apart, every ``every``-th an overload (0: none)."""
    for i in range(n):
        limit.on_answer(every > 0 and i % every == every - 1)
        clock.advance(dt)


def test_scattered_429s_never_cut_the_limit() -> None:
    """5 % random 429s (1 in 20) at 160 answers/s for a minute: the limit stays at max."""
    clock = FakeClock()
    limit = AdaptiveLimit(64, clock=clock)
    _answers(limit, clock, 160 * 60, every=20, dt=1 / 160)
    assert limit.limit == 64


def test_a_single_429_cuts_nothing() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(64, clock=clock)
    limit.on_overload()
    assert limit.limit == 64
    _answers(limit, clock, 5, every=1, dt=0.01)  # a few in a row: below min_samples
    assert limit.limit == 64


def test_sustained_overload_cuts_once_per_cooldown() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(128, decrease=0.75, cooldown=0.5, min_samples=20, clock=clock)
    _answers(limit, clock, 255, every=2, dt=0.001)  # half of them 429, but < 2 per slot
    assert limit.limit == 128
    limit.on_answer(False)  # the 256th answer: enough of them (2 x 128)
    assert limit.limit == 96  # one cut: the window was cleared and cooldown holds the next
    _answers(limit, clock, 300, every=2, dt=0.001)
    assert limit.limit == 96
    clock.advance(0.5)
    _answers(limit, clock, 192, every=2, dt=0.001)
    assert limit.limit == 72


def test_a_cut_needs_min_samples_of_fresh_answers() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(8, min_samples=20, cooldown=0.0, clock=clock)
    _answers(limit, clock, 19, every=1, dt=0.001)
    assert limit.limit == 8
    limit.on_overload()
    assert limit.limit == 6
    _answers(limit, clock, 19, every=1, dt=0.001)  # the window was cleared by the cut
    assert limit.limit == 6


def test_old_answers_leave_the_window() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(10, window=2.0, min_samples=20, clock=clock)
    _answers(limit, clock, 15, every=1, dt=0.001)  # 15 overloads, not yet a decision
    assert limit.share == 1.0
    clock.advance(3.0)  # they are gone
    assert limit.share == 0.0
    _answers(limit, clock, 10, every=1, dt=0.001)
    assert limit.limit == 10  # 10 fresh ones are below min_samples


def test_additive_increase_only_while_the_share_is_low() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(20, decrease=0.5, min_samples=20, clock=clock)
    _answers(limit, clock, 40, every=1, dt=0.001)
    assert limit.limit == 10
    clock.advance(5.0)
    for _ in range(11):  # ~+1/limit each: 11 successes at ~10 add just over one
        limit.on_success()
    assert limit.limit == 11
    # 7 % overloads (between grow_below and the threshold): once the window holds
    # them, the limit holds
    _answers(limit, clock, 300, every=14, dt=0.001)
    held = limit.limit
    _answers(limit, clock, 1000, every=14, dt=0.001)
    assert limit.limit == held
    clock.advance(5.0)
    for _ in range(400):
        limit.on_success()
    assert limit.limit == 20  # never above max


def test_min_limit_floor() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(10, min_limit=4, decrease=0.1, cooldown=0.0, min_samples=1, clock=clock)
    _answers(limit, clock, 20, every=1, dt=0.001)
    assert limit.limit == 4
    _answers(limit, clock, 20, every=1, dt=0.001)
    assert limit.limit == 4


# --- RunnerBackoff -------------------------------------------------------------------------------


def test_runner_backoff_after_back_to_back_overloads() -> None:
    backoff = RunnerBackoff(base=0.1, cap=1.0)
    assert backoff.after(True) == 0.0  # a scattered 429 costs the runner nothing
    assert backoff.after(False) == 0.0
    assert backoff.after(True) == 0.0
    assert [backoff.after(True) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff.after(False) == 0.0
    assert backoff.after(True) == 0.0  # a success reset the streak


# --- HeaderBudget: budgets the upstream announces ---------------------------------------------


def test_header_budget_learns_the_rate_and_paces_to_it() -> None:
    clock = FakeClock()
    budget = HeaderBudget(clock=clock)
    assert budget.wait_for(1) == 0.0  # nothing learned: no waiting
    # 1200 a minute, seen full once; then 20 left, full again in 59 s: 1180 / 59 = 20 a second
    budget.observe(Budget("requests", 1200, 1199, 0.05), in_flight=0)
    assert budget.rate is None  # one spent: too little to go by
    budget.observe(Budget("requests", 1200, 1198, 0.1), in_flight=0)
    assert budget.rate == pytest.approx(20.0)
    budget.observe(Budget("requests", 1200, 20, 59.0), in_flight=0)
    assert budget.rate == pytest.approx(20.0)
    for _ in range(20):
        assert budget.wait_for(1) == 0.0
        budget.take(1)
    assert budget.wait_for(1) == pytest.approx(1 / 20)
    assert budget.wait_for(5) == pytest.approx(5 / 20)
    clock.advance(0.5)
    assert budget.available == pytest.approx(10.0)
    assert budget.wait_for(1) == 0.0


def test_header_budget_learns_a_burst_smaller_than_the_limit() -> None:
    """600 a minute, but a bucket of 5: ``limit - remaining`` would say thousands a second."""
    clock = FakeClock()
    budget = HeaderBudget(clock=clock)
    budget.observe(Budget("requests", 600, 0, 1.0), in_flight=0)  # a 429 came back first
    assert budget.rate is None  # nothing to go by yet: the bucket's size is unknown
    budget.observe(Budget("requests", 600, 4, 0.1), in_flight=0)  # the first send: 5 - 1
    budget.observe(Budget("requests", 600, 1, 0.4), in_flight=0)
    assert budget.rate == pytest.approx(10.0)
    assert budget.available == pytest.approx(0.0)  # the 429 said none was left


def test_header_budget_counts_what_is_in_flight_and_never_rises_on_an_answer() -> None:
    clock = FakeClock()
    budget = HeaderBudget(clock=clock)
    budget.observe(Budget("requests", 100, 50, 25.0), in_flight=10)
    assert budget.available == pytest.approx(40)
    budget.observe(Budget("requests", 100, 90, 5.0), in_flight=0)  # an older, rosier answer
    assert budget.available == pytest.approx(40)
    budget.observe(Budget("requests", 100, 5, 47.5), in_flight=2)
    assert budget.available == pytest.approx(3)


def test_header_budget_without_limit_or_reset_only_lowers() -> None:
    clock = FakeClock()
    budget = HeaderBudget(clock=clock)
    budget.observe(Budget("tokens", None, 1000, None), in_flight=0)
    assert budget.rate is None
    budget.take(700)
    assert budget.wait_for(300) == 0.0
    assert budget.wait_for(400) == 0.05  # spent, rate unknown: hold briefly for answers
    clock.advance(2.5)
    assert budget.wait_for(400) == 0.0  # none came that told the rate: let go (429s will say)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_limit": 0},
        {"max_limit": 5, "min_limit": 6},
        {"max_limit": 5, "min_limit": 0},
        {"max_limit": 5, "decrease": 1.0},
        {"max_limit": 5, "decrease": 0.0},
        {"max_limit": 5, "threshold": 0.0},
        {"max_limit": 5, "threshold": 1.0},
    ],
)
def test_invalid_arguments(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AdaptiveLimit(**kwargs)  # type: ignore[arg-type]
