"""The outage circuit with a fake clock (batchgate.engine.circuit)."""

from __future__ import annotations

import pytest

from batchgate.engine.circuit import Circuit
from tests.unit.test_limits import FakeClock


def _circuit(clock: FakeClock, **kwargs: float) -> Circuit:
    return Circuit(clock=clock, wall=lambda: 1_800_000_000.0, **kwargs)  # type: ignore[arg-type]


def test_opens_after_a_run_of_outage_signs_with_no_success_between() -> None:
    clock = FakeClock()
    c = _circuit(clock, threshold=5)
    for _ in range(4):
        assert c.record(True, "refused") is None
    assert c.record(False) is None  # a success breaks the run
    for _ in range(4):
        assert c.record(True, "refused") is None
    assert not c.is_open
    change = c.record(True, "connection refused")
    assert change is not None and change.opened and change.failures == 5
    assert change.last_error == "connection refused" and change.since == 1_800_000_000.0
    assert c.is_open


def test_probes_with_doubling_gaps_and_closes_on_any_answer() -> None:
    clock = FakeClock()
    c = _circuit(clock, threshold=1, first_gap=1.0, max_gap=4.0)
    c.record(True, "down")
    gaps = []
    for _ in range(5):
        assert not c.try_probe()  # not before the gap
        gaps.append(c.next_probe_in())
        clock.advance(c.next_probe_in())
        assert c.try_probe()
        assert not c.try_probe()  # one probe at a time
        assert c.record(True, "still down", probe=True) is None
    assert gaps == [1.0, 2.0, 4.0, 4.0, 4.0]
    c.held = 7
    clock.advance(c.next_probe_in())
    assert c.try_probe()
    change = c.record(False, probe=True)
    assert change is not None and not change.opened
    assert (change.probes, change.held, change.last_error) == (5, 7, "still down")
    assert change.seconds == pytest.approx(1 + 2 + 4 + 4 + 4 + 4)
    assert not c.is_open and c.next_probe_in() == 0.0
    assert not c.try_probe()  # closed: nothing to probe


def test_an_in_flight_success_closes_it_too_and_it_reopens_with_the_first_gap() -> None:
    clock = FakeClock()
    c = _circuit(clock, threshold=2, first_gap=1.0, max_gap=8.0)
    c.record(True)
    c.record(True)
    clock.advance(1.0)
    assert c.try_probe()
    c.record(True, probe=True)
    assert c.next_probe_in() == 2.0
    change = c.record(False)  # a row sent before the circuit opened came back fine
    assert change is not None and not change.opened
    c.record(True)
    c.record(True)
    assert c.is_open and c.next_probe_in() == 1.0


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Circuit(threshold=0)
