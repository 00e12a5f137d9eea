"""Budgets: a cap on what a batch, or a tenant over a period, may spend, in ticks (1e-9 USD).

A budget is *reached* once the recorded cost is at or over it; from then on the scope's rows
that were not sent end with ``budget_exceeded``. Before a row is sent, the reservations of the
rows already leased count as spent: a row is leased only while ``spent + reserved < budget``,
so the spend stops within one row's reservation of the cap. A row's reservation is what it may
cost at most as far as batchgate can tell (``reservation``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from batchgate.domain.cost import TICKS_PER_USD, usd
from batchgate.errors import InvalidRequest

if TYPE_CHECKING:
    from batchgate.domain.records import Batch, TenantBudget

__all__ = [
    "BUDGET_FIELD",
    "EXCEEDED",
    "PERIODS",
    "batch_ended_message",
    "budget_object",
    "day_of",
    "parse_budget_usd",
    "period_start_day",
    "reservation",
    "tenant_budget_object",
    "tenant_ended_message",
]

BUDGET_FIELD = "budget_usd"  # the create extension field of every dialect
EXCEEDED = "budget_exceeded"  # the error code of a row a budget kept from being sent
PERIODS = ("month", "day", "total")
MAX_USD = Decimal(1_000_000_000)  # a billion dollars: far under the 64-bit tick column's limit
DAY = 86_400


def parse_budget_usd(value: Any, param: str = BUDGET_FIELD) -> int | None:
    """A budget given in USD (a number, or a decimal string such as ``"2.50"``) as ticks;
    None when absent. Raises InvalidRequest naming ``param`` for anything else."""
    if value is None:
        return None
    amount: Decimal | None = None
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            amount = None
    if amount is None or not amount.is_finite() or not 0 <= amount <= MAX_USD:
        raise InvalidRequest(
            f"Invalid '{param}': expected an amount in USD from 0 to {MAX_USD} (a number or a "
            f"decimal string such as \"2.50\"), got {value!r}.",
            param=param, code="invalid_value",
        )  # fmt: skip
    return int(amount * TICKS_PER_USD)


def reservation(
    input_tokens: int, output_tokens: int, ticks: tuple[float, float] | None
) -> int | None:
    """What a row may cost at most: its estimated input and its output cap at its prices (ticks
    per token); None for an unpriced row."""
    if ticks is None:
        return None
    return math.ceil(input_tokens * ticks[0] + output_tokens * ticks[1])


def day_of(now: float) -> int:
    """The UTC day number (days since 1970-01-01) of a Unix time."""
    return int(now // DAY)


def period_start_day(period: str, now: float) -> int:
    """The first UTC day of the budget period that ``now`` falls in."""
    if period == "day":
        return day_of(now)
    if period == "month":
        first = datetime.fromtimestamp(now, UTC).replace(day=1, hour=0, minute=0, second=0)
        return day_of(first.replace(microsecond=0).timestamp())
    return 0  # total: every day ever


def budget_object(batch: Batch) -> dict[str, Any] | None:
    """The ``budget`` extension field of a batch: null without one."""
    ticks = batch.budget_ticks
    if ticks is None:
        return None
    return {"ticks": int(ticks), "usd": usd(int(ticks)), "reached": batch.cost_ticks >= ticks}


def tenant_budget_object(row: TenantBudget) -> dict[str, Any]:
    """One tenant budget as ``GET /v1/budgets`` shows it (a row of ``Store.list_budgets``)."""

    def amount(ticks: int) -> dict[str, Any]:
        return {"ticks": ticks, "usd": usd(ticks)}

    return {
        "tenant": row.tenant, "period": row.period, "budget": amount(row.budget_ticks),
        "spent": amount(row.spent_ticks), "reserved": amount(row.reserved_ticks),
        "reached": row.reached,
    }  # fmt: skip


def batch_ended_message(budget_ticks: int) -> str:
    return f"This request was not sent: the batch reached its budget of {usd(budget_ticks)} USD."


def tenant_ended_message(tenant: str, period: str, budget_ticks: int) -> str:
    scope = {"day": "today", "month": "this month"}.get(period, "in total")
    return (
        f"This request was not sent: tenant {tenant!r} reached its budget of "
        f"{usd(budget_ticks)} USD {scope}."
    )
