"""Cost as the API shows it: integer ticks (1 tick = 1e-9 USD, a nano-dollar) and exact USD.

Every dialect's batch object carries the same extension field::

    "cost": {"ticks": 123000, "usd": "0.000123000", "priced": true}

``ticks`` is the sum of the batch's recorded rows' costs; ``usd`` the same amount as an exact
decimal string (never a float); ``priced`` is false when at least one recorded row used tokens
on a model without a price, so ``ticks`` leaves that row out: the cost is then unknown (a lower
bound), not free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchgate.domain.records import Batch

__all__ = ["TICKS_PER_USD", "cost_object", "usd"]

TICKS_PER_USD = 1_000_000_000


def usd(ticks: int) -> str:
    """``ticks`` as an exact USD amount with nine decimals, e.g. ``"0.000123000"``."""
    sign = "-" if ticks < 0 else ""
    whole, frac = divmod(abs(ticks), TICKS_PER_USD)
    return f"{sign}{whole}.{frac:09d}"


def cost_object(batch: Batch) -> dict[str, Any]:
    """The ``cost`` extension field of a batch."""
    ticks = int(batch.cost_ticks)
    return {"ticks": ticks, "usd": usd(ticks), "priced": not batch.unpriced}
