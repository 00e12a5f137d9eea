"""Progress of one batch on the console: a live bar on a terminal, plain periodic lines elsewhere.

Independent of where the counts come from: callers feed it ``Snapshot`` values (from a local
store for ``batchgate run``, from a server's API for ``submit --wait``); the view derives
requests/s, tokens/s and the ETA itself from successive snapshots.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

__all__ = [
    "ProgressView",
    "Rates",
    "Snapshot",
    "describe",
    "format_duration",
    "format_rate",
    "unavailable_notes",
]


@dataclass(frozen=True)
class Snapshot:
    """A batch's counts at one moment; ``tokens`` is input + output tokens so far."""

    total: int
    succeeded: int
    failed: int
    retrying: int = 0
    tokens: int = 0
    status: str = ""
    # The upstreams the batch waits for, each as "NAME unavailable since …: error" (from the
    # batch object's ``upstreams`` extension; empty while all are reachable).
    waiting_for: tuple[str, ...] = ()

    @property
    def done(self) -> int:
        return self.succeeded + self.failed


class Rates:
    """Requests/s and tokens/s over the last ``window`` seconds of snapshots, and the ETA.

    A sliding window rather than the average since start: a resumed run starts with many rows
    already done, and a rate limit or a slow upstream changes the pace midway."""

    def __init__(self, window: float = 30.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, int, int]] = deque()

    def add(self, at: float, snap: Snapshot) -> None:
        self._samples.append((at, snap.done, snap.tokens))
        while len(self._samples) > 2 and at - self._samples[1][0] >= self.window:
            self._samples.popleft()

    def _span(self) -> tuple[float, int, int] | None:
        if len(self._samples) < 2:
            return None
        (t0, d0, k0), (t1, d1, k1) = self._samples[0], self._samples[-1]
        return (t1 - t0, d1 - d0, k1 - k0) if t1 - t0 >= 0.5 else None

    @property
    def requests_per_s(self) -> float | None:
        span = self._span()
        return max(0, span[1]) / span[0] if span else None

    @property
    def tokens_per_s(self) -> float | None:
        span = self._span()
        return max(0, span[2]) / span[0] if span else None

    def eta(self, snap: Snapshot) -> float | None:
        """Seconds until every request is done at the current pace (None: unknown yet)."""
        rate = self.requests_per_s
        left = snap.total - snap.done
        if left <= 0:
            return 0.0
        return left / rate if rate else None


def format_rate(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.1f}"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def describe(snap: Snapshot, rates: Rates) -> str:
    """The counts and rates as one line of plain text (no markup)."""
    if snap.total <= 0:
        return f"{snap.status or 'waiting'}..."
    pct = 100.0 * snap.done / snap.total
    text = (
        f"{snap.done}/{snap.total} done ({pct:.1f}%), {snap.failed} failed, "
        f"{snap.retrying} retrying, {format_rate(rates.requests_per_s)} req/s, "
        f"{format_rate(rates.tokens_per_s)} tok/s, ETA {format_duration(rates.eta(snap))}"
    )
    if snap.status and snap.status != "in_progress":
        text = f"{text} [{snap.status}]"
    return "; ".join((text, *snap.waiting_for))


def unavailable_notes(upstreams: object, now: float | None = None) -> tuple[str, ...]:
    """``waiting_for`` notes from a batch object's ``upstreams`` extension field (a list of
    ``{name, state, since, last_error}``; anything else gives none)."""
    if not isinstance(upstreams, list):
        return ()
    at = time.time() if now is None else now
    notes = []
    for up in upstreams:
        if not isinstance(up, dict) or up.get("state") != "unavailable":
            continue
        since = up.get("since")
        ago = f" for {format_duration(max(0.0, at - since))}" if isinstance(since, int) else ""
        error = f": {up['last_error']}" if up.get("last_error") else ""
        notes.append(f"upstream {up.get('name')} unavailable{ago}, rows held{error}")
    return tuple(notes)


class ProgressView:
    """Shows a batch's progress; use it as a context manager and call ``update`` as counts
    change (as often as you like: the view decides what to draw).

    ``live`` (default: whether the console is a terminal) draws a rich progress bar;
    otherwise a plain line is printed at most once per ``interval`` seconds, plus one at the
    end, so logs and CI output stay readable."""

    def __init__(
        self,
        title: str,
        *,
        console: Console | None = None,
        interval: float = 5.0,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.title = title
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal if live is None else live
        self.interval = interval
        self.rates = Rates()
        self.last: Snapshot | None = None
        self._clock = clock
        self._printed: tuple[float, Snapshot] | None = None
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressView:
        if self.live:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                console=self.console,
                refresh_per_second=4,
            )
            self._task = self._bar.add_task(self.title, total=None, detail="")
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self.last is not None and (self._printed is None or self._printed[1] != self.last):
            self._print(self.last)

    def update(self, snap: Snapshot) -> None:
        now = self._clock()
        self.rates.add(now, snap)
        self.last = snap
        if self._bar is not None and self._task is not None:
            self._bar.update(
                self._task, total=snap.total or None, completed=snap.done, detail=self._detail(snap)
            )
        elif (
            self._printed is None
            or now - self._printed[0] >= self.interval
            or bool(snap.waiting_for) != bool(self._printed[1].waiting_for)
        ):
            self._print(snap)  # an upstream going away or coming back is said at once

    def _print(self, snap: Snapshot) -> None:
        self._printed = (self._clock(), snap)
        self.console.print(
            f"{self.title}: {describe(snap, self.rates)}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip

    def _detail(self, snap: Snapshot) -> str:
        if snap.total <= 0:
            return f"{snap.status or 'waiting'}..."
        failed = f"[red]{snap.failed} failed[/]" if snap.failed else "0 failed"
        status = f" [dim]{snap.status}[/]" if snap.status not in ("", "in_progress") else ""
        waiting = "".join(f" · [yellow]{escape(note)}[/]" for note in snap.waiting_for)
        return (
            f"{failed} · {snap.retrying} retrying · "
            f"{format_rate(self.rates.requests_per_s)} req/s · "
            f"{format_rate(self.rates.tokens_per_s)} tok/s · "
            f"ETA {format_duration(self.rates.eta(snap))}{status}{waiting}"
        )
