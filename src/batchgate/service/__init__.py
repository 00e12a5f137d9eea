"""The service: the one door the API uses. Async; it hides the store's thread hop and wakes the
in-process worker after a change it must hear of. The use-cases themselves are synchronous, in
``service/core.py`` (``Operations``), shared with ``batchgate run``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from batchgate.config import Config
from batchgate.dialects.openai import ENDPOINTS
from batchgate.domain.keys import hash_secret
from batchgate.domain.records import (
    ApiKey,
    Batch,
    FileRecord,
    FinishedRow,
    RequestRecord,
    TenantBudget,
    UsageGroup,
)
from batchgate.service.core import Dialects, Operations, ResultsPage
from batchgate.storage.base import Store
from batchgate.storage.blobs import BlobStore

__all__ = ["ENDPOINTS", "Operations", "ResultsPage", "Service"]

T = TypeVar("T")


class Service:
    """Every use-case the API needs, awaitable. ``wake`` is called after a create or a cancel
    (the in-process worker's wake-up; nothing when the workers are elsewhere)."""

    def __init__(
        self, store: Store, blobs: BlobStore, config: Config, *,
        wake: Callable[[], None] = lambda: None,
    ) -> None:  # fmt: skip
        self.ops = Operations(store, blobs, config)
        self.config = config
        self.wake = wake
        self._store = store

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._store.call(fn, *args, **kwargs)

    def provider_of(self, model: str | None) -> str | None:
        return self.ops.provider_of(model)

    # -- health and callers ------------------------------------------------------------------

    async def ping(self) -> None:
        await self._run(self._store.ping)

    async def key_for(self, secret: str) -> ApiKey | None:
        """The key ``secret`` is, revoked or not; None for an unknown secret."""
        return await self._run(self._store.key_by_hash, hash_secret(secret))

    async def has_live_keys(self) -> bool:
        return await self._run(self._store.has_live_keys)

    async def key_state(self) -> tuple[bool, bool]:
        """(a live key exists, a key was ever made)."""
        return await self._run(self._store.key_state)

    # -- files --------------------------------------------------------------------------------

    async def upload_file(
        self, tenant: str, *, filename: str, purpose: str, src: BinaryIO,
        expires_after: int | None = None,
    ) -> FileRecord:  # fmt: skip
        return await self._run(
            self.ops.upload_file, tenant, filename=filename, purpose=purpose, src=src,
            expires_after=expires_after,
        )  # fmt: skip

    async def list_files(
        self, tenant: str | None, *, purpose: str | None, after: str | None, limit: int, order: str
    ) -> tuple[list[FileRecord], bool]:
        return await self._run(
            self.ops.list_files, tenant, purpose=purpose, after=after, limit=limit, order=order
        )

    async def get_file(self, tenant: str | None, file_id: str) -> FileRecord:
        return await self._run(self.ops.get_file, tenant, file_id)

    async def file_content(self, tenant: str | None, file_id: str) -> Path:
        return await self._run(self.ops.file_content, tenant, file_id)

    async def delete_file(self, tenant: str | None, file_id: str) -> FileRecord:
        return await self._run(self.ops.delete_file, tenant, file_id)

    # -- batches ------------------------------------------------------------------------------

    async def create_batch(self, dialect: str, tenant: str, body: Any) -> Batch:
        batch = await self._run(self.ops.create_batch, dialect, tenant, body)
        self.wake()
        return batch

    async def get_batch(self, tenant: str | None, batch_id: str, *, dialect: Dialects) -> Batch:
        return await self._run(self.ops.get_batch, tenant, batch_id, dialect=dialect)

    async def list_batches(
        self, tenant: str | None, *, after: str | None, limit: int, dialect: Dialects,
        before: str | None = None,
    ) -> tuple[list[Batch], bool]:  # fmt: skip
        return await self._run(
            self.ops.list_batches, tenant, after=after, before=before, limit=limit,
            dialect=dialect,
        )  # fmt: skip

    async def cancel_batch(self, tenant: str | None, batch_id: str, *, dialect: Dialects) -> Batch:
        batch = await self._run(self.ops.cancel_batch, tenant, batch_id, dialect=dialect)
        self.wake()
        return batch

    async def retry_batch(
        self, tenant: str | None, batch_id: str, body: Any, *, dialect: Dialects
    ) -> Batch:
        batch = await self._run(self.ops.retry_batch, tenant, batch_id, body, dialect=dialect)
        self.wake()
        return batch

    async def retry_jobs(self, tenant: str | None, body: Any) -> Batch:
        batch = await self._run(self.ops.retry_jobs, tenant, body)
        self.wake()
        return batch

    async def delete_batch(self, tenant: str | None, batch_id: str, *, dialect: Dialects) -> None:
        await self._run(self.ops.delete_batch, tenant, batch_id, dialect=dialect)

    async def results_page(
        self, tenant: str | None, batch_id: str, *, dialect: str, after: int, limit: int
    ) -> ResultsPage:
        return await self._run(
            self.ops.results_page, tenant, batch_id, dialect=dialect, after=after, limit=limit
        )

    async def finished_rows(self, batch_id: str, after: int, limit: int) -> list[FinishedRow]:
        return await self._run(self.ops.finished_rows, batch_id, after, limit)

    async def results_file(self, tenant: str | None, batch_id: str, *, dialect: str) -> Path:
        return await self._run(self.ops.results_file, tenant, batch_id, dialect=dialect)

    # -- jobs, usage, budgets -----------------------------------------------------------------

    async def get_job(self, tenant: str | None, job_id: str) -> RequestRecord:
        return await self._run(self.ops.get_job, tenant, job_id)

    async def list_jobs(
        self, tenant: str | None, *, after: str | None, limit: int
    ) -> tuple[list[RequestRecord], bool]:
        return await self._run(self.ops.list_jobs, tenant, after=after, limit=limit)

    async def usage(
        self, tenant: str | None, *, start: float, end: float, by_model: bool
    ) -> list[UsageGroup]:
        return await self._run(self._store.usage, tenant, start=start, end=end, by_model=by_model)

    async def list_budgets(self, tenant: str | None) -> list[TenantBudget]:
        return await self._run(self._store.list_budgets, time.time(), tenant)
