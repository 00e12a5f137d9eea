"""A lane per upstream: bounded in-flight sends, RPM/TPM budgets (configured and announced by
the upstream), adaptive concurrency and the outage circuit.

The lane is where the engine's limits meet: ``gate`` waits out an open circuit (or hands the
caller the probe), ``admit`` waits out the rate budgets, ``observe`` feeds each answer back
into the overload window, the circuit and the announced budgets. The rules themselves live in
``limits.py`` (overload, budgets) and ``circuit.py`` (outages).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from batchgate.config import UpstreamConfig
from batchgate.engine.circuit import Change, Circuit
from batchgate.engine.limits import AdaptiveLimit, HeaderBudget, TokenBucket
from batchgate.engine.retry import OVERLOAD_STATUSES, UNAVAILABLE_STATUSES
from batchgate.providers.base import Attempt, Provider
from batchgate.storage.types import LeasedRow

# Which announced budgets pace by request and which by the row's token estimate (an answer's
# output tokens are not known before it is sent: Anthropic's output budget only pauses).
_PER_REQUEST = ("requests",)
_PER_TOKEN = ("tokens", "input-tokens")
_RECHECK = 0.25  # seconds: how long a wait for an announced budget sleeps before looking again
FIRST_ALONE = 2.0  # seconds the rest of a lane waits for the answer to its first send, at most


class Lane:
    """Rows leased for one upstream wait in ``queue``; ``runners`` coroutines send them.

    Runner ``k`` only takes a row while ``k < adaptive.limit``, so lowering the limit under
    sustained overload parks the surplus runners without any lock on the hot path.
    """

    def __init__(self, upstream: UpstreamConfig, provider: Provider) -> None:
        self.upstream = upstream
        self.provider = provider
        self.name = upstream.name
        self.runners = max(1, upstream.concurrency)
        self.queue: asyncio.Queue[LeasedRow] = asyncio.Queue()
        self.adaptive = AdaptiveLimit(self.runners)
        self.rpm = TokenBucket(upstream.rpm)
        self.tpm = TokenBucket(upstream.tpm)
        self.announced: dict[str, HeaderBudget] = {}
        self.circuit = Circuit()
        self._closed = asyncio.Event()
        self._closed.set()
        self._answered = asyncio.Event()  # the upstream answered this lane once
        self._first_out = False
        self.in_flight = 0
        self.tokens_in_flight = 0  # the token estimates of the rows in flight
        self.paused_until = 0.0  # the upstream's own rate headers said a budget is spent
        self.sent = 0
        self.retrying = 0

    @property
    def wanted(self) -> int:
        """How many more rows to lease: keep about two rounds of work buffered; while the
        circuit is open, only the one row a waiting probe needs."""
        if self.circuit.is_open:
            return 1 if self.circuit.probing and self.queue.empty() else 0
        return max(0, 2 * self.runners - self.queue.qsize() - self.in_flight)

    def drain(self) -> list[LeasedRow]:
        """Take every row waiting in the queue (the circuit opened: they go back to the store,
        where cancel and expiry can reach them, instead of waiting here under a lease)."""
        rows = []
        while not self.queue.empty():
            rows.append(self.queue.get_nowait())
        return rows

    def may_run(self, k: int) -> bool:
        return k < self.adaptive.limit

    async def gate(self) -> bool:
        """Return once the lane may send: at once while the circuit is closed; while it is
        open, when the circuit closes (False) or when this caller is to send the probe (True)."""
        circuit = self.circuit
        while circuit.is_open:
            if circuit.try_probe():
                return True
            wait = circuit.next_probe_in() if not circuit.probing else circuit.max_gap
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wait, 0.01)):
                    await self._closed.wait()
        return False

    async def admit(self, row: LeasedRow) -> None:
        """Wait until the RPM and TPM budgets (configured, and as the upstream announces them)
        and any upstream-announced pause allow it. The lane's very first send goes alone (for
        at most ``FIRST_ALONE`` seconds): its answer's rate headers, if the upstream sends
        any, say how much may follow, so a tight budget is not overrun by a full first round
        sent blind."""
        if not self._answered.is_set():
            if self._first_out:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FIRST_ALONE):
                        await self._answered.wait()
            self._first_out = True
        wait = self.paused_until - time.monotonic()
        if not self.rpm.unlimited:
            wait = max(wait, self.rpm.reserve(1))
        if not self.tpm.unlimited:
            wait = max(wait, self.tpm.reserve(row.est_tokens))
        if wait > 0:
            await asyncio.sleep(wait)
        while self.announced:  # the upstream's own budgets: wait a little, then look again
            units = {name: 1 if name in _PER_REQUEST else row.est_tokens for name in self.announced}
            wait = max(b.wait_for(units[name]) for name, b in self.announced.items())
            if wait <= 0:
                for name, budget in self.announced.items():
                    budget.take(units[name])
                return
            await asyncio.sleep(min(wait, _RECHECK))

    def observe(self, attempt: Attempt, *, probe: bool = False) -> Change | None:
        """Feed one answer back into the limits; the circuit's change, if it made one."""
        status = attempt.status
        self._answered.set()
        if attempt.pause:
            self.paused_until = max(self.paused_until, time.monotonic() + attempt.pause)
        for budget in attempt.budgets:
            if budget.name in _PER_REQUEST or budget.name in _PER_TOKEN:
                announced = self.announced.get(budget.name)
                if announced is None:
                    announced = self.announced[budget.name] = HeaderBudget()
                announced.observe(budget, self._spending(budget.name, status))
        if status is not None:
            self.adaptive.on_answer(status in OVERLOAD_STATUSES)
        outage = status is None or status in UNAVAILABLE_STATUSES
        change = self.circuit.record(outage, attempt.message or f"HTTP {status}", probe=probe)
        if change is not None:
            if change.opened:
                self._closed.clear()
            else:
                self._closed.set()
        return change

    def _spending(self, budget: str, status: int | None) -> float:
        """What is in flight and will spend ``budget`` after the answer that announced it:
        none after a 429 (the requests sent with it will mostly be refused too; counting
        them would stall the lane for nothing), else the requests (or their token estimates)
        in flight."""
        if status == 429:
            return 0.0
        return self.in_flight if budget in _PER_REQUEST else self.tokens_in_flight

    def settle_tokens(self, row: LeasedRow, used_tokens: int) -> None:
        """Correct the TPM budget by what the answer really used."""
        if self.tpm.unlimited or not used_tokens:
            return
        diff = row.est_tokens - used_tokens
        if diff > 0:
            self.tpm.refund(diff)
        elif diff < 0:
            self.tpm.reserve(-diff)
