"""A lane per upstream: bounded in-flight sends, RPM/TPM budgets and adaptive concurrency."""

from __future__ import annotations

import asyncio
import time

from batchgate.config import UpstreamConfig
from batchgate.engine.limits import AdaptiveLimit, TokenBucket
from batchgate.engine.retry import OVERLOAD_STATUSES
from batchgate.providers.base import Provider
from batchgate.storage.types import LeasedRow


class Lane:
    """Rows leased for one upstream wait in ``queue``; ``runners`` coroutines send them.

    Runner ``k`` only takes a row while ``k < adaptive.limit``, so lowering the limit after a
    429 parks the surplus runners without any lock on the hot path.
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
        self.in_flight = 0
        self.paused_until = 0.0  # the upstream's own rate headers said to wait
        self.sent = 0
        self.retrying = 0

    @property
    def wanted(self) -> int:
        """How many more rows to lease: keep about two rounds of work buffered."""
        return max(0, 2 * self.runners - self.queue.qsize() - self.in_flight)

    def may_run(self, k: int) -> bool:
        return k < self.adaptive.limit

    async def admit(self, row: LeasedRow) -> None:
        """Wait until the RPM and TPM budgets (and any upstream-announced pause) allow it."""
        wait = self.paused_until - time.monotonic()
        if not self.rpm.unlimited:
            wait = max(wait, self.rpm.reserve(1))
        if not self.tpm.unlimited:
            wait = max(wait, self.tpm.reserve(row.est_tokens))
        if wait > 0:
            await asyncio.sleep(wait)

    def settle(
        self, row: LeasedRow, status: int | None, used_tokens: int, pause: float | None = None
    ) -> None:
        """Feed one answer back into the limits: overload backs off, success recovers, a spent
        upstream budget holds the lane until it resets."""
        if pause:
            self.paused_until = max(self.paused_until, time.monotonic() + pause)
        if status in OVERLOAD_STATUSES:
            self.adaptive.on_overload()
        elif status is not None and status < 500:
            self.adaptive.on_success()
        if not self.tpm.unlimited and used_tokens:
            diff = row.est_tokens - used_tokens
            if diff > 0:
                self.tpm.refund(diff)
            elif diff < 0:
                self.tpm.reserve(-diff)
