"""A lane's circuit: an upstream outage is a state of the lane, not a failure of its rows.

**The rule.** The circuit is *closed* (the lane sends) until ``threshold`` (5) outage signs
come in a row with no success in between: a connection that cannot be opened or is dropped, a
timeout, or a 502 / 503 / 504. Then it *opens*:

* the lane sends nothing and holds its rows (leased rows wait in the lane; the feeder leases
  no more); a row that was in flight and fails while the circuit is open goes back to the
  queue *uncharged* (it does not use up one of its ``max_attempts``);
* after a gap, one *probe* is let through: one real row, sent as usual. The gap starts at
  ``first_gap`` (1 s) and doubles after every failed probe up to ``max_gap`` (4 s, so an
  upstream that comes back is found within about 4 s);
* any answer that is not an outage sign (a success, but also a 4xx or a 429: the upstream is
  there) closes the circuit and the lane resumes at the concurrency it had.

Rows wait as long as their batch's completion window allows; at expiry the usual expiry rules
end them. The lane logs once when the circuit opens and once when it closes (with how long it
was open, how many probes failed and how many rows were handed back uncharged), and the
worker writes the state to the store, so the batch objects show it.

Pure: an injected clock, no sleeping; ``Lane.gate`` does the waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Change", "Circuit"]

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Change:
    """The circuit opened or closed: what the log and the store are told."""

    opened: bool
    since: float  # wall time (Unix seconds) it opened
    last_error: str
    failures: int  # outage signs in the run that opened it
    probes: int = 0  # failed probes while it was open
    held: int = 0  # rows handed back uncharged while it was open
    seconds: float = 0.0  # how long it was open (for a close)


class Circuit:
    def __init__(
        self,
        *,
        threshold: int = 5,
        first_gap: float = 1.0,
        max_gap: float = 4.0,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, got {threshold}")
        self.threshold, self.first_gap, self.max_gap = threshold, first_gap, max_gap
        self._clock, self._wall = clock, wall
        self.is_open = False
        self.run = 0  # outage signs since the last other answer
        self.last_error = ""
        self.since = 0.0  # wall time it opened
        self._opened_at = 0.0
        self._gap = first_gap
        self._next_probe = 0.0
        self.probing = False
        self.probes = 0
        self.held = 0

    def next_probe_in(self) -> float:
        """Seconds until a probe may go (0 when one may go now, or the circuit is closed)."""
        return max(0.0, self._next_probe - self._clock()) if self.is_open else 0.0

    def try_probe(self) -> bool:
        """Whether the caller may send the probe now (at most one at a time)."""
        if not self.is_open or self.probing or self._clock() < self._next_probe:
            return False
        self.probing = True
        return True

    def record(self, outage: bool, error: str = "", *, probe: bool = False) -> Change | None:
        """Feed one answer (``outage``: it was an outage sign); the change it made, if any."""
        if probe:
            self.probing = False
        if not outage:
            self.run = 0
            return self._close() if self.is_open else None
        self.run += 1
        self.last_error = error or self.last_error
        if self.is_open:
            if probe:
                self.probes += 1
                self._gap = min(self.max_gap, self._gap * 2)
                self._next_probe = self._clock() + self._gap
            return None
        if self.run < self.threshold:
            return None
        return self._open()

    def _open(self) -> Change:
        self.is_open = True
        self.since, self._opened_at = self._wall(), self._clock()
        self._gap = self.first_gap
        self._next_probe = self._opened_at + self._gap
        self.probes = self.held = 0
        return Change(True, self.since, self.last_error, self.run)

    def _close(self) -> Change:
        self.is_open = False
        seconds = self._clock() - self._opened_at
        change = Change(
            False, self.since, self.last_error, self.run, self.probes, self.held, seconds
        )
        self.run = 0
        return change
