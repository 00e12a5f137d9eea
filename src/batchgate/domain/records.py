"""The named data that flows from storage through the service to the API and the engine: a
batch, a file, a finished row, a request row, an API key, a tenant budget, a usage group.
Frozen values, built by the store from its rows; nothing outside ``storage/`` sees a database
row or a positional tuple.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from batchgate.domain.states import TERMINAL

__all__ = [
    "ApiKey",
    "Batch",
    "FileRecord",
    "FinishedRow",
    "RequestRecord",
    "TenantBudget",
    "UpstreamHealth",
    "UsageGroup",
    "from_row",
]

R = TypeVar("R")


def from_row(cls: type[R], row: Mapping[Any, Any]) -> R:
    """``cls`` from a row that may carry more columns than it has fields."""
    names: tuple[str, ...] = _FIELDS.get(cls) or _fields_of(cls)
    return cls(**{name: row[name] for name in names if name in row})


_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields_of(cls: Any) -> tuple[str, ...]:
    names = (
        tuple(cls._fields)
        if issubclass(cls, tuple)
        else tuple(f.name for f in dataclasses.fields(cls))
    )
    _FIELDS[cls] = names
    return names


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch of any dialect: its one internal status (``BatchStatus``), the stamps of each
    state it reached, its counts over rows, its usage and cost, and its budget."""

    id: str
    dialect: str  # openai | anthropic | gateway | jobs (see ``batchgate.api.dialects``)
    endpoint: str
    status: str  # a BatchStatus value
    created_at: int
    expires_at: int
    tenant: str = ""
    input_file_id: str | None = None
    completion_window: str = "24h"
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: str | None = None  # JSON text: the validation errors of a failed batch
    metadata: str | None = None  # JSON text: the client's metadata
    model: str | None = None
    output_expires_after: int | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0  # rows that ended without a result, never-sent ones included
    canceled: int = 0  # of ``failed``: rows a cancel kept from being sent
    expired: int = 0  # of ``failed``: rows an expiry kept from being sent
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_ticks: int = 0
    unpriced: int = 0
    budget_ticks: int | None = None
    upstreams: str | None = None  # the upstreams its rows go to, comma-separated
    retried_by: str | None = None  # the batch its server-side retry made (``POST …/retry``)
    claim_token: str | None = None
    claim_expires_at: float | None = None
    # Not stored with the batch: the service attaches its upstreams' health when it reads it.
    health: tuple[UpstreamHealth, ...] = ()

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class UpstreamHealth:
    """Whether an upstream is reachable, as the workers' circuits see it (see
    ``engine/circuit.py``): ``available``, or ``unavailable`` since a time, with the error."""

    name: str
    state: str  # available | unavailable
    since: float | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A stored file (its content is the blob ``blob_key``)."""

    id: str
    filename: str
    purpose: str
    bytes: int
    created_at: int
    blob_key: str
    tenant: str = ""
    expires_at: int | None = None
    status: str = "processed"


class FinishedRow(NamedTuple):
    """One request row as result files and result pages render it. A NamedTuple, not a
    dataclass: finalization builds one per input line, and a tuple is the cheapest to make;
    read it by name."""

    line: int
    custom_id: str
    state: str  # a RowState value
    status_code: int | None
    response: bytes | None
    request_id: str | None
    error_code: str | None
    error_message: str | None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request row read on its own (a job of the jobs dialect), with its batch's
    ``created_at``."""

    batch_id: str
    line: int
    custom_id: str
    state: str
    created_at: int
    status_code: int | None = None
    response: bytes | None = None
    error_code: str | None = None
    error_message: str | None = None
    finished_at: float | None = None
    cost_ticks: int | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as it may be shown: never its secret nor its hash."""

    id: str
    name: str
    tenant: str
    prefix: str
    admin: bool
    created_at: int
    revoked_at: int | None = None

    @property
    def live(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class TenantBudget:
    """A tenant's budget; as listed, with what it spent in the current period and what its
    leased rows hold (both 0 where only the budget itself was read)."""

    tenant: str
    budget_ticks: int
    period: str  # day | month | total
    updated_at: int
    spent_ticks: int = 0
    reserved_ticks: int = 0

    @property
    def reached(self) -> bool:
        return self.spent_ticks >= self.budget_ticks


@dataclass(frozen=True, slots=True)
class UsageGroup:
    """The requests one tenant (and model, when grouped so) finished in a time range."""

    tenant: str
    requests: int
    succeeded: int
    failed: int
    input_tokens: int
    output_tokens: int
    cost_ticks: int
    unpriced: int  # of them, how many used tokens without a price
    model: str | None = None
