"""The worker: lease → send → record, plus the housekeeping that validates, sweeps and finalizes.

One worker runs inside ``batchgate serve`` or alone as ``batchgate worker``; any number of them
may share one database. Everything a worker holds is a lease in the database, so a worker that
dies loses nothing: its leases expire and another worker takes the rows over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from batchgate.config import Config, UpstreamConfig
from batchgate.domain.records import Batch
from batchgate.domain.states import BatchStatus, RowState
from batchgate.engine.circuit import Change
from batchgate.engine.finalize import finalize
from batchgate.engine.ingest import fail_validation, ingest
from batchgate.engine.lanes import Lane
from batchgate.engine.limits import RunnerBackoff
from batchgate.engine.results import converters, to_result
from batchgate.engine.retry import OVERLOAD_STATUSES, RetryPolicy
from batchgate.errors import StoreUnavailable
from batchgate.providers import provider_for
from batchgate.providers.base import Provider
from batchgate.routing import Router
from batchgate.storage.base import Store
from batchgate.storage.blobs import BlobStore
from batchgate.storage.types import LeasedRow, RowResult

log = logging.getLogger("batchgate.worker")
# How often an open circuit is written to the store again (readers drop a record that is
# older than ``storage.health.STALE``: its worker is gone).
HEALTH_REFRESH = 5.0


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    lease_ttl: float = 30.0  # a dead worker's rows are taken over this long after its last beat
    poll_interval: float = 0.25  # how often idle loops look for new work
    flush_interval: float = 0.02  # group commit: results wait at most this long
    flush_max: int = 1000  # … or until this many are pending
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    validate: bool = True
    finalize: bool = True
    # A runner takes its next row only once its result is committed, so at most one send per
    # runner is ever unrecorded: a killed process re-sends at most ``concurrency`` requests.
    # Off by default: the server keeps sending while results wait for the group commit.
    hold_until_recorded: bool = False


def _owner_id() -> str:
    return f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        config: Config,
        options: WorkerOptions | None = None,
        provider_factory: Callable[[UpstreamConfig], Provider] = provider_for,
    ) -> None:
        self.store, self.blobs, self.config = store, blobs, config
        self.opts = options or WorkerOptions()
        self.router = Router(config)
        self.owner = _owner_id()
        self.lanes = {u.name: Lane(u, provider_factory(u)) for u in config.upstreams}
        self._pending: list[RowResult] = []
        self._recorded: asyncio.Future[None] | None = None  # the flush that takes _pending
        self._wake = asyncio.Event()
        self._has_results = asyncio.Event()
        self._batches: list[tuple[str, str]] = []
        self._batches_at = 0.0
        self._recording = True
        self._health_at = 0.0
        self._health_open: set[str] = set()  # lanes whose open circuit is in the store
        self._strikes: dict[str, str] = {}  # batch id -> how its last validation failed

    # -- public ------------------------------------------------------------------------------

    def wake(self) -> None:
        """Tell idle loops there is new work (called by the API in the same process)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then hand back what was leased but not sent."""
        tasks = [asyncio.create_task(self._housekeeping(), name="housekeeping")]
        tasks.append(asyncio.create_task(self._recorder(), name="recorder"))
        for lane in self.lanes.values():
            tasks.append(asyncio.create_task(self._feeder(lane), name=f"feed-{lane.name}"))
            tasks += [
                asyncio.create_task(self._runner(lane, k), name=f"run-{lane.name}-{k}")
                for k in range(lane.runners)
            ]
        log.info("worker_started owner=%s lanes=%s", self.owner, list(self.lanes))
        await stop.wait()
        for t in tasks[2:]:
            t.cancel()
        await asyncio.gather(*tasks[2:], return_exceptions=True)
        tasks[0].cancel()
        await asyncio.gather(tasks[0], return_exceptions=True)
        self._recording = False
        self._has_results.set()
        await asyncio.gather(tasks[1], return_exceptions=True)
        try:
            await self._safely(self.store.release_leases, self.owner)
            for name in sorted(self._health_open):
                await self._safely(self.store.clear_upstream_health, name, self.owner)
        finally:
            for lane in self.lanes.values():
                await lane.provider.close()
        log.info("worker_stopped owner=%s", self.owner)

    # -- dispatch: lease → send → record -------------------------------------------------------

    async def _feeder(self, lane: Lane) -> None:
        while True:
            want = lane.wanted
            rows: list[LeasedRow] = []
            asked = want >= (1 if lane.circuit.is_open else max(1, lane.runners // 4))
            if asked:
                batches = await self._dispatchable()
                if batches:
                    rows = await self._safely(
                        self.store.lease, [b for b, _ in batches], lane.name, min(want, 1000),
                        owner=self.owner, token=uuid.uuid4().hex, now=time.time(),
                        ttl=self.opts.lease_ttl,
                    ) or []  # fmt: skip
                    endpoints = dict(batches)
                    for row in rows:
                        row.endpoint = endpoints[row.batch_id]
                        lane.queue.put_nowait(row)
            if asked and len(rows) < want // 2:  # the store ran dry, not just a full buffer
                await self._idle(self.opts.poll_interval)
            elif lane.circuit.is_open and not asked:
                await asyncio.sleep(0.05)  # holding: nothing to lease until a probe waits
            else:
                await asyncio.sleep(0.005)

    async def _runner(self, lane: Lane, k: int) -> None:
        backoff = RunnerBackoff()
        while True:
            if not lane.may_run(k):
                await asyncio.sleep(0.05)
                continue
            probe = await lane.gate()  # before taking a row: an open circuit holds none here
            row = await lane.queue.get()
            if lane.circuit.is_open and not probe:  # it opened while this runner waited
                lane.queue.put_nowait(row)  # for the probe
                await asyncio.sleep(0)
                continue
            await lane.admit(row)
            lane.in_flight += 1
            lane.tokens_in_flight += row.est_tokens
            try:
                attempt = await lane.provider.send(row.endpoint, row.body)
            finally:
                lane.in_flight -= 1
                lane.tokens_in_flight -= row.est_tokens
            change = lane.observe(attempt, probe=probe)
            if change is not None:
                self._circuit_changed(lane, change)
            convert = converters(row.endpoint, lane.provider.kind)
            held = lane.circuit.is_open
            result = to_result(row, attempt, self.opts.retry, convert, held=held)
            if held and not result.charged:
                lane.circuit.held += 1
            lane.settle_tokens(row, result.input_tokens + result.output_tokens)
            self._pending.append(result)
            if self.opts.hold_until_recorded:
                # Flush now rather than after flush_interval: this runner waits for it. The
                # results that arrive while a flush runs share the next one (group commit).
                self._has_results.set()  # shielded: a cancelled runner leaves the flush intact
                await asyncio.shield(self._next_flush())
            elif len(self._pending) >= self.opts.flush_max:
                self._has_results.set()
            pause = backoff.after(attempt.status in OVERLOAD_STATUSES)
            if pause:
                await asyncio.sleep(pause)

    def _circuit_changed(self, lane: Lane, change: Change) -> None:
        """Say it once in the log, and in the store (so batch objects show it)."""
        if change.opened:
            held = lane.drain()
            lane.circuit.held += len(held)
            now = time.time()
            self._pending.extend(
                RowResult(
                    r.batch_id, r.line, r.lease_token, RowState.QUEUED.value,
                    error_code="retrying", error_message=f"held: {change.last_error}",
                    next_attempt_at=now, charged=False,
                )
                for r in held
            )  # fmt: skip
            self._has_results.set()
            log.warning(
                "upstream_unavailable upstream=%s url=%s failures=%d last_error=%r: holding its "
                "rows and probing it", lane.name, lane.upstream.url, change.failures,
                change.last_error,
            )  # fmt: skip
        else:
            log.warning(
                "upstream_available upstream=%s after=%.1fs failed_probes=%d rows_held=%d",
                lane.name, change.seconds, change.probes, change.held,
            )  # fmt: skip
        self._health_at = 0.0  # written by housekeeping at its next turn
        self.wake()

    async def _write_health(self) -> None:
        """Every lane's circuit into the store: an open one refreshed, a closed one cleared."""
        now = time.time()
        for lane in self.lanes.values():
            circuit = lane.circuit
            if circuit.is_open:
                await self._safely(
                    self.store.set_upstream_health, lane.name, self.owner, circuit.since,
                    circuit.last_error, now,
                )  # fmt: skip
                self._health_open.add(lane.name)
            elif lane.name in self._health_open:
                await self._safely(self.store.clear_upstream_health, lane.name, self.owner)
                self._health_open.discard(lane.name)

    def _next_flush(self) -> asyncio.Future[None]:
        """Resolved once the flush that takes the results pending now has committed them."""
        if self._recorded is None:
            self._recorded = asyncio.get_running_loop().create_future()
        return self._recorded

    async def _recorder(self) -> None:
        """Group commit: flush what the runners produced every ``flush_interval`` (or sooner
        when ``flush_max`` results wait); one last flush after the worker is told to stop."""
        while self._recording:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.opts.flush_interval):
                    await self._has_results.wait()
            self._has_results.clear()
            if self._pending:
                await self._flush()
        await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        recorded, self._recorded = self._recorded, None
        while True:
            try:
                await self.store.call(self.store.record, batch, time.time())
                break
            except Exception as exc:  # the store is down: keep the results and try again
                log.warning("record_failed error=%s pending=%d", exc, len(batch))
                if not self._recording:
                    return  # stopping: the leases expire and the rows are taken over
                await asyncio.sleep(1.0)
        if recorded is not None:
            recorded.set_result(None)
        if any(r.state == RowState.QUEUED for r in batch):
            self.wake()

    async def _dispatchable(self) -> list[tuple[str, str]]:
        now = time.monotonic()
        if now - self._batches_at > 0.5 or self._wake.is_set():
            self._batches = await self._safely(self.store.dispatchable_batches, time.time()) or []
            self._batches_at = now
        return self._batches

    # -- housekeeping: validate, sweep, finalize, heartbeat, reclaim ------------------------------

    async def _housekeeping(self) -> None:
        last_beat = last_reclaim = 0.0
        while True:
            now = time.monotonic()
            if now - last_beat > self.opts.lease_ttl / 3:
                until = time.time() + self.opts.lease_ttl
                await self._safely(self.store.heartbeat, self.owner, until)
                last_beat = now
            if now - self._health_at > HEALTH_REFRESH:
                await self._write_health()
                self._health_at = now
            if now - last_reclaim > min(5.0, self.opts.lease_ttl / 2):
                n = await self._safely(self.store.reclaim_expired_leases, time.time())
                if n:
                    log.info("leases_reclaimed rows=%d", n)
                    self.wake()
                last_reclaim = now
            busy = await self._housekeep_once()
            if not busy:
                await self._idle(self.opts.poll_interval)

    async def _housekeep_once(self) -> bool:
        busy = False
        if self.opts.validate:
            busy |= await self._claimed(
                lambda token, ttl: self.store.claim_batch(
                    [BatchStatus.VALIDATING], token, time.time(), ttl
                ),
                self._validate,
            )
        for sweep in await self._safely(self.store.batches_to_sweep, time.time()) or []:
            ended = await self._safely(
                self.store.end_queued_rows, sweep.batch_id, sweep.code, time.time(), sweep.message
            )
            busy = busy or bool(ended)
        if self.opts.finalize:
            busy |= await self._claimed(
                lambda token, ttl: self.store.claim_finalizable(token, time.time(), ttl),
                self._finalize,
            )
        return busy

    async def _claimed(
        self,
        claim: Callable[[str, float], Batch | None],
        work: Callable[[Batch, str], Awaitable[None]],
    ) -> bool:
        token = uuid.uuid4().hex
        batch = await self._safely(claim, token, self.opts.lease_ttl)
        if not batch:
            return False
        renewer = asyncio.create_task(self._renew_claim(batch.id, token))
        try:
            await work(batch, token)
        except Exception as exc:  # logged; the claim expires and another try is made later
            log.exception("batch_step_failed batch_id=%s error=%s", batch.id, exc)
        finally:
            renewer.cancel()
        return True

    async def _renew_claim(self, batch_id: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.opts.lease_ttl / 3)
            until = time.time() + self.opts.lease_ttl
            await self._safely(self.store.renew_claim, batch_id, token, until)

    async def _validate(self, batch: Batch, token: str) -> None:
        try:
            started = await self.store.call(
                ingest, self.store, self.blobs, batch, token, self.router, self.config.limits
            )
        except Exception as exc:
            if not await self._struck(batch, token, exc):
                raise
            return
        self._strikes.pop(batch.id, None)
        log.info("batch_validated batch_id=%s started=%s", batch.id, started)
        self._batches_at = 0.0
        self.wake()

    async def _struck(self, batch: Batch, token: str, exc: Exception) -> bool:
        """A validation that raised: a store or disk outage is tried again after the claim
        expires; anything else is a poisoned input (invariant 8). Its first failure frees the
        claim for a second try at once; failing the same way again ends the batch ``failed``
        with the reason, instead of trying forever. True when handled here."""
        if isinstance(exc, OSError | StoreUnavailable):
            return False
        what = f"{type(exc).__name__}: {exc}"[:500]
        before = self._strikes.get(batch.id)
        if before != what:
            if len(self._strikes) > 1000:  # bounded: batches that recovered are forgotten
                self._strikes.clear()
            self._strikes[batch.id] = what
            log.warning("batch_validation_failed batch_id=%s error=%r: trying once more",
                        batch.id, what)  # fmt: skip
            await self._safely(self.store.renew_claim, batch.id, token, 0.0)
            return True
        self._strikes.pop(batch.id, None)
        message = (
            f"The input could not be validated: {what}. It failed the same way twice, so the "
            "batch ends here instead of being tried again."
        )
        await self._safely(fail_validation, self.store, batch.id, token, message)
        log.error("batch_validation_gave_up batch_id=%s error=%r", batch.id, what)
        self.wake()
        return True

    async def _finalize(self, batch: Batch, token: str) -> None:
        done = await self.store.call(finalize, self.store, self.blobs, batch, token)
        log.info("batch_finalized batch_id=%s done=%s", batch.id, done)

    # -- helpers ---------------------------------------------------------------------------------

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    async def _safely(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a Store method; any failure is logged and retried by the loop, never fatal to it."""
        try:
            return await self.store.call(fn, *args, **kwargs)
        except Exception as exc:
            log.warning("store_call_failed call=%s error=%s", getattr(fn, "__name__", fn), exc)
            await asyncio.sleep(0.5)
            return None
