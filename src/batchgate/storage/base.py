"""The ``Store`` protocol: the use-cases the service and the engine ask of storage, whatever the
backend. ``sql.SqlStore`` (SQLite and PostgreSQL) is the one implementation today; another
backend implements this and passes the storage contract tests (``tests/storage``).

Methods are synchronous and short; async callers run them on the store's threads with
``call``. Values cross this seam as the named types of ``domain/records.py`` and
``storage/types.py``, never as database rows or positional tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from batchgate.domain.records import (
    ApiKey,
    Batch,
    FileRecord,
    FinishedRow,
    RequestRecord,
    TenantBudget,
    UsageGroup,
)
from batchgate.domain.states import BatchStatus, Rule
from batchgate.domain.sweeps import Sweep
from batchgate.storage.types import IngestRow, LeasedRow, RowResult

T = TypeVar("T")

__all__ = ["Store"]


class Store(Protocol):
    # -- plumbing -----------------------------------------------------------------------------
    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...
    def ping(self) -> None: ...

    # -- files --------------------------------------------------------------------------------
    def insert_file(self, file: FileRecord) -> None: ...
    def get_file(self, file_id: str, tenant: str | None = None) -> FileRecord | None: ...
    def list_files(
        self, tenant: str | None, *, purpose: str | None, after: str | None, limit: int, order: str
    ) -> tuple[list[FileRecord], bool]: ...
    def delete_file(self, file_id: str, tenant: str | None = None) -> FileRecord | None: ...

    # -- batches and the one door for their states ------------------------------------------------
    def insert_batch(self, batch: Batch) -> None: ...
    def get_batch(self, batch_id: str, tenant: str | None = None) -> Batch | None: ...
    def list_batches(
        self, tenant: str | None, *, after: str | None, limit: int,
        dialect: str | Collection[str] | None = None, before: str | None = None,
    ) -> tuple[list[Batch], bool]: ...  # fmt: skip
    def delete_batch(self, batch_id: str) -> None: ...
    def advance_batch(
        self, batch_id: str, rule: Rule, *, now: int, token: str | None = None,
        tenant: str | None = None, values: Mapping[str, Any] | None = None,
        new_files: Sequence[FileRecord] = (), drop_rows: bool = False, keep_claim: bool = False,
        rows_step: Callable[[Any], Mapping[str, Any]] | None = None,
    ) -> BatchStatus | None: ...  # fmt: skip
    def claim_batch(
        self, statuses: Sequence[BatchStatus], token: str, now: float, ttl: float
    ) -> Batch | None: ...
    def claim_finalizable(self, token: str, now: float, ttl: float) -> Batch | None: ...
    def renew_claim(self, batch_id: str, token: str, until: float) -> bool: ...
    def dispatchable_batches(self, now: float) -> list[tuple[str, str]]: ...
    def batches_to_sweep(self, now: float) -> list[Sweep]: ...

    # -- rows ---------------------------------------------------------------------------------
    def delete_rows(self, batch_id: str) -> None: ...
    def insert_rows(self, batch_id: str, rows: Sequence[IngestRow], now: float) -> None: ...
    def duplicate_custom_ids(
        self, batch_id: str, limit: int
    ) -> tuple[list[tuple[str, int]], int]: ...
    def lease(
        self, batch_ids: Sequence[str], upstream: str, limit: int, *, owner: str, token: str,
        now: float, ttl: float,
    ) -> list[LeasedRow]: ...  # fmt: skip
    def heartbeat(self, owner: str, until: float) -> int: ...
    def release_leases(self, owner: str) -> int: ...
    def reclaim_expired_leases(self, now: float) -> int: ...
    def record(self, results: Sequence[RowResult], now: float) -> int: ...
    def end_queued_rows(
        self, batch_id: str, code: str, now: float, message: str | None = None
    ) -> int: ...
    def failed_codes(self, batch_id: str) -> dict[str, int]: ...
    def requeue_failed(
        self, batch_id: str, *, now: int, codes: Collection[str] | None = None,
        expires_at: int | None = None,
    ) -> int: ...  # fmt: skip
    def iter_finished_rows(self, batch_id: str, *, chunk: int = 2000) -> Iterator[FinishedRow]: ...
    def rows_after(
        self, batch_id: str, after: int, limit: int, *, finished_only: bool = False
    ) -> list[FinishedRow]: ...
    def get_request(
        self, batch_id: str, line: int, *, dialect: str, tenant: str | None = None
    ) -> RequestRecord | None: ...
    def list_requests(
        self, tenant: str | None, *, dialect: str, before: tuple[str, int] | None, limit: int
    ) -> tuple[list[RequestRecord], bool]: ...

    # -- keys, budgets, usage -----------------------------------------------------------------
    def key_by_hash(self, key_hash: str) -> ApiKey | None: ...
    def has_live_keys(self) -> bool: ...
    def get_budget(self, tenant: str) -> TenantBudget | None: ...
    def list_budgets(self, now: float, tenant: str | None = None) -> list[TenantBudget]: ...
    def usage(
        self, tenant: str | None, *, start: float, end: float, by_model: bool = False
    ) -> list[UsageGroup]: ...
