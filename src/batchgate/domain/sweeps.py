"""How rows that were never sent end: a sweep ends a batch's queued rows, with a code that says
why (the batch was cancelled, it expired, a budget was reached) and the state they end in."""

from __future__ import annotations

from dataclasses import dataclass

from batchgate.domain.budget import EXCEEDED
from batchgate.domain.states import RowState

__all__ = ["NOT_SENT", "NOT_SENT_COUNTER", "Sweep", "cancelled_sweep", "expired_sweep"]

CANCELLED = "batch_cancelled"
EXPIRED = "batch_expired"

# By error code: the state a queued row ends in, and its default message.
NOT_SENT: dict[str, tuple[RowState, str]] = {
    CANCELLED: (RowState.CANCELED, "This request was not sent: the batch was cancelled."),
    EXPIRED: (
        RowState.EXPIRED,
        "This request was not sent: the batch expired before it could run.",
    ),
    EXCEEDED: (RowState.FAILED, "This request was not sent: a budget was reached."),
}
# Of a batch's ``failed``: the counter of rows that a cancel or an expiry kept from being sent.
NOT_SENT_COUNTER: dict[RowState, str] = {RowState.CANCELED: "canceled", RowState.EXPIRED: "expired"}


@dataclass(frozen=True, slots=True)
class Sweep:
    """End the queued rows of ``batch_id`` with ``code`` and ``message``."""

    batch_id: str
    code: str
    message: str


def cancelled_sweep(batch_id: str) -> Sweep:
    return Sweep(batch_id, CANCELLED, NOT_SENT[CANCELLED][1])


def expired_sweep(batch_id: str) -> Sweep:
    return Sweep(batch_id, EXPIRED, NOT_SENT[EXPIRED][1])
