"""Values that cross the Store seam: leased rows going out, results coming back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class LeasedRow:
    batch_id: str
    line: int
    custom_id: str
    upstream: str
    body: bytes
    est_tokens: int
    attempts: int  # sends so far, including the one this lease is for
    lease_token: str
    endpoint: str = ""


@dataclass(slots=True)
class RowResult:
    """The outcome of one leased row: a final state, or ``queued`` again for a retry."""

    batch_id: str
    line: int
    lease_token: str
    state: str  # RowState value: succeeded | failed | queued
    status_code: int | None = None
    response: bytes | None = None
    request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    next_attempt_at: float = 0.0
    charged: bool = True  # a retry only: False gives the send back (it used up no attempt)


@dataclass(slots=True)
class IngestRow:
    line: int
    custom_id: str
    state: str
    upstream: str | None
    model: str | None
    body: bytes
    est_tokens: int
    error_code: str | None = None
    error_message: str | None = None
    ticks: tuple[float, float] | None = None  # (input, output) ticks per token; None: unpriced
    reserve_ticks: int | None = None  # the most it may cost, held against budgets while leased
