"""Retry decisions as values (batchgate.engine.retry)."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from batchgate.engine.retry import (
    OVERLOAD_STATUSES,
    RETRYABLE_STATUSES,
    Decision,
    GiveUp,
    Outcome,
    Retry,
    RetryPolicy,
    decide,
    parse_retry_after,
)

NO_JITTER = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=60.0, jitter=0.0)


def http(status: int, retry_after: float | None = None) -> Outcome:
    return Outcome(status=status, retry_after=retry_after, message="boom")


# (id, outcome, attempts, expected decision: None, Retry(delay) or GiveUp(code))
CASES: list[tuple[str, Outcome, int, Decision | None]] = [
    ("200 success", http(200), 1, None),
    ("204 success", http(204), 3, None),
    ("299 success", http(299), 1, None),
    ("429 first", http(429), 1, Retry(1.0, "", charged=False)),
    ("429 second", http(429), 2, Retry(2.0, "", charged=False)),
    ("500 third", http(500), 3, Retry(4.0, "")),
    ("503 fourth", http(503), 4, Retry(8.0, "", charged=False)),
    ("408", http(408), 1, Retry(1.0, "")),
    ("409", http(409), 1, Retry(1.0, "")),
    ("502", http(502), 1, Retry(1.0, "")),
    ("504", http(504), 1, Retry(1.0, "")),
    ("529", http(529), 1, Retry(1.0, "", charged=False)),
    ("other 5xx 501", http(501), 1, Retry(1.0, "")),
    ("other 5xx 599", http(599), 1, Retry(1.0, "")),
    ("429 never exhausted", http(429), 5, Retry(16.0, "", charged=False)),
    ("503 never exhausted", http(503), 9, Retry(60.0, "", charged=False)),
    ("529 never exhausted", http(529, retry_after=2.0), 50, Retry(2.0, "", charged=False)),
    ("429 out of quota", Outcome(429, code="insufficient_quota"), 1, GiveUp("upstream_error", "")),
    ("held connect", Outcome(None, "connect"), 5, Retry(0.0, "", charged=False)),
    ("held timeout", Outcome(None, "timeout"), 9, Retry(0.0, "", charged=False)),
    ("held 502", http(502), 5, Retry(0.0, "", charged=False)),
    ("500 past max", http(500), 9, GiveUp("upstream_error", "")),
    ("400 at once", http(400), 1, GiveUp("upstream_error", "")),
    ("401 at once", http(401), 1, GiveUp("upstream_error", "")),
    ("404 at once", http(404), 1, GiveUp("upstream_error", "")),
    ("422 at once", http(422), 1, GiveUp("upstream_error", "")),
    ("302 at once", http(302), 1, GiveUp("upstream_error", "")),
    ("retry-after used", http(429, retry_after=7.5), 1, Retry(7.5, "", charged=False)),
    ("retry-after zero", http(503, retry_after=0.0), 3, Retry(0.0, "", charged=False)),
    ("retry-after clamped high", http(429, retry_after=9999.0), 1, Retry(300.0, "", charged=False)),
    ("retry-after clamped low", http(429, retry_after=-3.0), 1, Retry(0.0, "", charged=False)),
    ("retry-after ignored on 400", http(400, retry_after=1.0), 1, GiveUp("upstream_error", "")),
    ("retry-after ignored on success", http(200, retry_after=1.0), 1, None),
    ("connect", Outcome(None, "connect"), 1, Retry(1.0, "")),
    ("connect exhausted", Outcome(None, "connect"), 5, GiveUp("upstream_unreachable", "")),
    ("timeout", Outcome(None, "timeout"), 2, Retry(2.0, "")),
    ("timeout exhausted", Outcome(None, "timeout"), 5, GiveUp("request_timeout", "")),
    ("malformed 200", Outcome(200, "malformed"), 1, Retry(1.0, "")),
    ("malformed exhausted", Outcome(200, "malformed"), 5, GiveUp("malformed_response", "")),
    ("http without status", Outcome(None, "http"), 1, Retry(1.0, "")),
    ("unknown kind exhausted", Outcome(None, "weird"), 5, GiveUp("max_attempts_exceeded", "")),
]


@pytest.mark.parametrize(
    ("name", "outcome", "attempts", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_decide(name: str, outcome: Outcome, attempts: int, expected: Decision | None) -> None:
    decision = decide(outcome, attempts, NO_JITTER, held=name.startswith("held"))
    if expected is None:
        assert decision is None
    elif isinstance(expected, Retry):
        assert isinstance(decision, Retry), decision
        assert decision.delay == pytest.approx(expected.delay)
        assert decision.reason
        # rate limits, overload and a held outage never use up an attempt; failures do
        assert decision.charged == expected.charged
    else:
        assert isinstance(decision, GiveUp), decision
        assert decision.code == expected.code
        assert decision.message


@pytest.mark.parametrize(("attempts", "expected"), [(1, 1.0), (3, 4.0), (6, 10.0), (200, 10.0)])
def test_backoff_is_capped(attempts: int, expected: float) -> None:
    policy = RetryPolicy(max_attempts=1000, base_delay=1.0, max_delay=10.0, jitter=0.0)
    decision = decide(http(500), attempts, policy)
    assert isinstance(decision, Retry)
    assert decision.delay == expected


def test_max_attempts_one_never_retries_a_failure() -> None:
    decision = decide(http(500), 1, RetryPolicy(max_attempts=1))
    assert isinstance(decision, GiveUp) and decision.code == "upstream_error"
    decision = decide(http(503), 1, RetryPolicy(max_attempts=1))  # overloaded: not a failure
    assert isinstance(decision, Retry) and not decision.charged


def test_a_held_outage_is_charged_once_the_circuit_is_closed() -> None:
    for outcome in (Outcome(None, "connect"), Outcome(None, "timeout"), http(504)):
        decision = decide(outcome, 5, NO_JITTER)
        assert isinstance(decision, GiveUp)
        decision = decide(outcome, 1, NO_JITTER)
        assert isinstance(decision, Retry) and decision.charged


def test_messages_carry_the_status_and_text() -> None:
    retry = decide(http(503), 1, NO_JITTER)
    give_up = decide(http(400), 1, NO_JITTER)
    assert isinstance(retry, Retry) and "503" in retry.reason and "boom" in retry.reason
    assert isinstance(give_up, GiveUp) and "400" in give_up.message and "boom" in give_up.message
    exhausted = decide(Outcome(None, "timeout", message="read timed out"), 5, NO_JITTER)
    assert isinstance(exhausted, GiveUp)
    assert "5 attempts" in exhausted.message and "read timed out" in exhausted.message


def test_jitter_bounds_with_seeded_rng() -> None:
    policy = RetryPolicy(base_delay=2.0, max_delay=100.0, jitter=0.25, max_attempts=10)
    rng = random.Random(1234)
    delays = []
    for _ in range(500):
        decision = decide(http(500), 3, policy, rng)  # nominal 8 s
        assert isinstance(decision, Retry)
        delays.append(decision.delay)
    assert all(6.0 <= d <= 8.0 for d in delays)
    assert max(delays) - min(delays) > 1.5  # the jitter actually spreads the waits
    # seeded: the same sequence again
    again = random.Random(1234)
    first = decide(http(500), 3, policy, again)
    assert isinstance(first, Retry) and first.delay == delays[0]


def test_jitter_does_not_touch_retry_after() -> None:
    policy = RetryPolicy(jitter=0.9)
    decision = decide(http(429, retry_after=5.0), 1, policy, random.Random(0))
    assert isinstance(decision, Retry) and decision.delay == 5.0


def test_instant_policy() -> None:
    policy = RetryPolicy.instant(max_attempts=3)
    assert policy.max_attempts == 3
    for outcome in (http(500), http(502), Outcome(None, "connect")):
        for attempts in (1, 2):
            decision = decide(outcome, attempts, policy)
            assert isinstance(decision, Retry) and decision.delay == 0.0
        assert isinstance(decide(outcome, 3, policy), GiveUp)
    assert RetryPolicy.instant().max_attempts == 5


def test_status_sets() -> None:
    assert {429, 503, 529} == OVERLOAD_STATUSES
    assert OVERLOAD_STATUSES <= RETRYABLE_STATUSES
    assert 400 not in RETRYABLE_STATUSES


# --- parse_retry_after ---------------------------------------------------------------------------

NOW = 1_700_000_000.0

RETRY_AFTER_CASES: list[tuple[str, dict[str, str], float | None]] = [
    ("none", {}, None),
    ("seconds", {"retry-after": "3"}, 3.0),
    ("float seconds", {"Retry-After": "1.5"}, 1.5),
    ("upper case", {"RETRY-AFTER": " 2 "}, 2.0),
    ("ms", {"retry-after-ms": "250"}, 0.25),
    ("ms mixed case", {"Retry-After-Ms": "1500"}, 1.5),
    ("ms wins", {"retry-after": "10", "retry-after-ms": "100"}, 0.1),
    ("bad ms falls back", {"retry-after": "10", "retry-after-ms": "soon"}, 10.0),
    ("negative ms falls back", {"retry-after": "4", "retry-after-ms": "-1"}, 4.0),
    ("negative", {"retry-after": "-5"}, None),
    ("garbage", {"retry-after": "later"}, None),
    ("nan", {"retry-after": "nan"}, None),
    ("inf", {"retry-after": "inf"}, None),
    ("empty", {"retry-after": ""}, None),
    ("zero", {"retry-after": "0"}, 0.0),
    ("http date", {"retry-after": formatdate(NOW + 30, usegmt=True)}, 30.0),
    ("http date past", {"retry-after": formatdate(NOW - 30, usegmt=True)}, 0.0),
    ("zone-less date", {"retry-after": "Wed, 21 Oct 2015 07:28:00 -0000"}, None),
    ("other headers only", {"content-type": "application/json"}, None),
]


@pytest.mark.parametrize(
    ("name", "headers", "expected"), RETRY_AFTER_CASES, ids=[c[0] for c in RETRY_AFTER_CASES]
)
def test_parse_retry_after(name: str, headers: dict[str, str], expected: float | None) -> None:
    result = parse_retry_after(headers, now=NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_parse_retry_after_multidict() -> None:
    multidict = pytest.importorskip("multidict")
    headers = multidict.CIMultiDict([("Retry-After", "12")])
    assert parse_retry_after(headers) == 12.0


def test_parse_retry_after_date_uses_wall_clock_by_default() -> None:
    import time

    headers = {"retry-after": formatdate(time.time() + 100, usegmt=True)}
    result = parse_retry_after(headers)
    assert result is not None and 98.0 <= result <= 100.0
