"""Batch and request-row states: the one source of both transition tables and of the small pure
rules that pick a move. Storage applies moves only through these tables (``advance`` for a
batch, ``advance_row`` for rows); an illegal move raises ``InvalidTransition``.

The internal batch state is the OpenAI status set; every dialect projects it into its own words.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from batchgate.errors import InvalidTransition

__all__ = [
    "ACTIVE",
    "BATCH_TRANSITIONS",
    "FINISHED_ROWS",
    "INITIAL_ROWS",
    "OPEN_ROWS",
    "RETRY_BATCH_MOVES",
    "RETRY_ROW_MOVES",
    "ROW_TRANSITIONS",
    "TERMINAL",
    "BatchStatus",
    "RowState",
    "Rule",
    "advance",
    "advance_row",
    "on_cancel",
    "on_finalize",
    "on_finish",
    "on_retry",
    "on_validated",
    "on_validation_failed",
    "stamp_of",
]


class BatchStatus(StrEnum):
    VALIDATING = "validating"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


TERMINAL: frozenset[BatchStatus] = frozenset(
    {BatchStatus.FAILED, BatchStatus.COMPLETED, BatchStatus.EXPIRED, BatchStatus.CANCELLED}
)
ACTIVE: frozenset[BatchStatus] = frozenset(set(BatchStatus) - TERMINAL)

_S = BatchStatus
BATCH_TRANSITIONS: dict[BatchStatus, frozenset[BatchStatus]] = {
    _S.VALIDATING: frozenset({_S.IN_PROGRESS, _S.FAILED, _S.CANCELLING}),
    _S.IN_PROGRESS: frozenset({_S.FINALIZING, _S.CANCELLING}),
    _S.FINALIZING: frozenset({_S.COMPLETED, _S.EXPIRED, _S.CANCELLING}),
    _S.CANCELLING: frozenset({_S.CANCELLED}),
    _S.FAILED: frozenset(),
    # ended, but its failed rows may be sent again: a retry reopens it (``on_retry``)
    _S.COMPLETED: frozenset({_S.IN_PROGRESS}),
    _S.EXPIRED: frozenset(),
    _S.CANCELLED: frozenset(),
}
# The only moves out of an ended batch status or a finished row state: a retry of a completed
# batch's failed rows (``Store.requeue_failed``, ``batchgate run --retry-failed``), which
# queues them again and reopens the batch so that it is sent and finalized once more.
RETRY_BATCH_MOVES: dict[BatchStatus, frozenset[BatchStatus]] = {
    _S.COMPLETED: frozenset({_S.IN_PROGRESS})
}


Rule = Callable[[BatchStatus], BatchStatus | None]
"""Picks a batch's move from its current status (None: the status stays)."""


def stamp_of(status: BatchStatus) -> str:
    """The column stamped with the time a batch reached ``status``."""
    return f"{status.value}_at"


def advance(current: str, target: str) -> BatchStatus:
    """Check the batch move ``current -> target`` against the table; the target, or raises
    InvalidTransition."""
    cur, tgt = BatchStatus(current), BatchStatus(target)
    if tgt not in BATCH_TRANSITIONS[cur]:
        raise InvalidTransition(cur.value, tgt.value)
    return tgt


# -- the rules that choose a batch's move (None: its status stays) --------------------------------


def on_cancel(current: BatchStatus) -> BatchStatus | None:
    """A cancel request: to ``cancelling``; asking again once cancelling or cancelled changes
    nothing; any other ended batch cannot be cancelled (the table refuses it)."""
    if current in (_S.CANCELLING, _S.CANCELLED):
        return None
    return _S.CANCELLING


def on_validated(current: BatchStatus) -> BatchStatus | None:
    """Its input became rows: a validating batch starts; one cancelled meanwhile stays
    ``cancelling`` (its rows then end as cancelled)."""
    return _S.IN_PROGRESS if current == _S.VALIDATING else None


def on_validation_failed(current: BatchStatus) -> BatchStatus:
    """Its input is invalid: the batch fails, unless it was cancelled meanwhile: then the
    cancel wins and it ends cancelled."""
    return _S.FAILED if current == _S.VALIDATING else _S.CANCELLED


def on_finalize(current: BatchStatus) -> BatchStatus | None:
    """No open row is left: a running batch moves to ``finalizing`` while its files are
    written; a cancelling one stays cancelling until it ends."""
    return _S.FINALIZING if current == _S.IN_PROGRESS else None


def on_finish(expired: bool) -> Rule:
    """Its files are written: it ends ``expired`` when rows expired, else ``completed``; a
    cancelling batch ends ``cancelled`` whatever its rows did."""
    wanted = _S.EXPIRED if expired else _S.COMPLETED

    def rule(current: BatchStatus) -> BatchStatus:
        return _S.CANCELLED if current == _S.CANCELLING else wanted

    return rule


def on_retry(current: BatchStatus) -> BatchStatus | None:
    """Failed rows are queued again: a completed batch reopens (``in_progress``: it is sent
    and finalized again); a running one stays running (its new queued rows join it). Any
    other status refuses: a validating or finalizing batch is mid-step, and an expired,
    cancelled or failed one cannot run again (InvalidTransition, nothing changed)."""
    if current == _S.COMPLETED:
        return _S.IN_PROGRESS
    if current == _S.IN_PROGRESS:
        return None
    raise InvalidTransition(current.value, _S.IN_PROGRESS.value)


class RowState(StrEnum):
    """The state of one request row."""

    QUEUED = "queued"  # waiting to be leased (next_attempt_at says when)
    LEASED = "leased"  # a worker holds it (lease_token) and is sending it
    SUCCEEDED = "succeeded"  # a 2xx answer is recorded
    FAILED = "failed"  # a final error is recorded (upstream 4xx, retries exhausted, unroutable)
    CANCELED = "canceled"  # the batch was cancelled before it was sent
    EXPIRED = "expired"  # the batch expired before it was sent


_R = RowState
OPEN_ROWS: frozenset[RowState] = frozenset({_R.QUEUED, _R.LEASED})
FINISHED_ROWS: frozenset[RowState] = frozenset(set(RowState) - OPEN_ROWS)
# A row is born queued, or already failed when ingest finds it cannot be sent (no upstream
# serves its model, it cannot be translated, it has no price under a budget).
INITIAL_ROWS: frozenset[RowState] = frozenset({_R.QUEUED, _R.FAILED})
ROW_TRANSITIONS: dict[RowState, frozenset[RowState]] = {
    # leased by a worker; or ended unsent by a cancel, an expiry or a budget (failed)
    _R.QUEUED: frozenset({_R.LEASED, _R.CANCELED, _R.EXPIRED, _R.FAILED}),
    # answered, failed for good, or queued again (a retry, a release, a dead worker's reclaim)
    _R.LEASED: frozenset({_R.SUCCEEDED, _R.FAILED, _R.QUEUED}),
    _R.SUCCEEDED: frozenset(),
    # queued again by a retry of its batch's failed rows (RETRY_ROW_MOVES)
    _R.FAILED: frozenset({_R.QUEUED}),
    _R.CANCELED: frozenset(),
    _R.EXPIRED: frozenset(),
}
RETRY_ROW_MOVES: dict[RowState, frozenset[RowState]] = {_R.FAILED: frozenset({_R.QUEUED})}


def advance_row(current: str, target: str) -> RowState:
    """Check the row move ``current -> target`` against the table; the target, or raises
    InvalidTransition."""
    cur, tgt = RowState(current), RowState(target)
    if tgt not in ROW_TRANSITIONS[cur]:
        raise InvalidTransition(cur.value, tgt.value, what="request row")
    return tgt
