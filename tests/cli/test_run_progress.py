"""The progress view of ``batchgate run`` (and client waits): rates, ETA, the two output modes."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from batchgate.cli.progress import (
    ProgressView,
    Rates,
    Snapshot,
    describe,
    format_duration,
    format_rate,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def plain_console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=False, width=80), buf


def test_rates_and_eta_come_from_successive_snapshots() -> None:
    rates = Rates()
    assert rates.requests_per_s is None and rates.eta(Snapshot(100, 0, 0)) is None
    rates.add(0.0, Snapshot(100, 0, 0, tokens=0))
    rates.add(2.0, Snapshot(100, 18, 2, tokens=400))
    assert rates.requests_per_s == pytest.approx(10.0)
    assert rates.tokens_per_s == pytest.approx(200.0)
    assert rates.eta(Snapshot(100, 18, 2)) == pytest.approx(8.0)
    assert rates.eta(Snapshot(100, 90, 10)) == 0.0


def test_rates_follow_the_recent_pace_not_the_average_since_start() -> None:
    rates = Rates(window=10.0)
    for t in range(0, 60):  # 100 req/s for a minute, then 10 req/s
        rates.add(float(t), Snapshot(10_000, 100 * t, 0))
    for t in range(60, 90):
        rates.add(float(t), Snapshot(10_000, 6000 + 10 * (t - 60), 0))
    assert rates.requests_per_s == pytest.approx(10.0, rel=0.1)


def test_a_resumed_batch_starts_with_no_rate_rather_than_a_huge_one() -> None:
    rates = Rates()
    rates.add(0.0, Snapshot(1000, 900, 0))
    assert rates.requests_per_s is None
    rates.add(1.0, Snapshot(1000, 905, 0))
    assert rates.requests_per_s == pytest.approx(5.0)


def test_formatting() -> None:
    assert [format_rate(x) for x in (None, 3.14159, 1234.0, 56_789.0)] == [
        "-",
        "3.1",
        "1.2k",
        "57k",
    ]
    assert [format_duration(x) for x in (None, 4.4, 125, 7260)] == ["-", "4s", "2m05s", "2h01m"]
    assert describe(Snapshot(0, 0, 0, status="validating"), Rates()) == "validating..."
    line = describe(Snapshot(200, 40, 10, retrying=3, status="in_progress"), Rates())
    assert line == "50/200 done (25.0%), 10 failed, 3 retrying, - req/s, - tok/s, ETA -"


def test_plain_lines_at_most_once_per_interval_plus_one_at_the_end() -> None:
    console, buf = plain_console()
    clock = Clock()
    with ProgressView("job", console=console, interval=5.0, clock=clock) as view:
        assert not view.live
        for t in range(13):
            clock.now = float(t)
            view.update(Snapshot(13, t, 0, status="in_progress"))
    printed = buf.getvalue().splitlines()
    assert [p.split(" done")[0] for p in printed] == ["job: 0/13", "job: 5/13", "job: 10/13",
                                                      "job: 12/13"]  # fmt: skip
    assert "1.0 req/s" in printed[-1]


def test_the_end_line_is_not_repeated() -> None:
    console, buf = plain_console()
    with ProgressView("job", console=console, interval=5.0, clock=Clock()) as view:
        view.update(Snapshot(1, 1, 0, status="completed"))
    assert len(buf.getvalue().splitlines()) == 1
    assert "[completed]" in buf.getvalue()


def test_a_terminal_gets_a_live_bar() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=140)
    clock = Clock()
    with ProgressView("job", console=console, clock=clock) as view:
        assert view.live
        view.update(Snapshot(10, 0, 0))
        clock.now = 1.0
        view.update(Snapshot(10, 4, 1, retrying=2, tokens=50))
    out = buf.getvalue()
    assert "5/10" in out and "1 failed" in out and "2 retrying" in out
    assert "5.0 req/s" in out and "50.0 tok/s" in out and "ETA 1s" in out
