"""Batch and request states, and the one door every batch state change goes through.

The internal batch state is the OpenAI status set; every dialect projects it into its own words.
"""

from __future__ import annotations

from enum import StrEnum

from batchgate.errors import InvalidTransition


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
TRANSITIONS: dict[BatchStatus, frozenset[BatchStatus]] = {
    _S.VALIDATING: frozenset({_S.IN_PROGRESS, _S.FAILED, _S.CANCELLING}),
    _S.IN_PROGRESS: frozenset({_S.FINALIZING, _S.CANCELLING}),
    _S.FINALIZING: frozenset({_S.COMPLETED, _S.EXPIRED, _S.CANCELLING}),
    _S.CANCELLING: frozenset({_S.CANCELLED}),
    _S.FAILED: frozenset(),
    _S.COMPLETED: frozenset(),
    _S.EXPIRED: frozenset(),
    _S.CANCELLED: frozenset(),
}


def transition(current: str, target: str) -> str:
    """Validate ``current -> target`` and return the timestamp column to stamp (``<target>_at``).

    Raises InvalidTransition for a move the table does not allow.
    """
    cur, tgt = BatchStatus(current), BatchStatus(target)
    if tgt not in TRANSITIONS[cur]:
        raise InvalidTransition(cur.value, tgt.value)
    return f"{tgt.value}_at"


class RowState(StrEnum):
    """The state of one request row."""

    QUEUED = "queued"  # waiting to be leased (next_attempt_at says when)
    LEASED = "leased"  # a worker holds it (lease_token) and is sending it
    SUCCEEDED = "succeeded"  # a 2xx answer is recorded
    FAILED = "failed"  # a final error is recorded (upstream 4xx, retries exhausted, unroutable)
    CANCELED = "canceled"  # the batch was cancelled before it was sent
    EXPIRED = "expired"  # the batch expired before it was sent


OPEN_ROWS: frozenset[RowState] = frozenset({RowState.QUEUED, RowState.LEASED})
