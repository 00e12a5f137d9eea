"""The Store's usage read: requests, tokens and cost per tenant (and model) over a time range
of ``finished_at`` (mixed into ``Store``).

One aggregate query over the rows finished in the range (``ix_requests_finished_at``), joined to
their batches for the tenant. Only rows that ended ``succeeded`` or ``failed`` count: rows a
cancel or an expiry ended were never sent.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.engine import Connection

from batchgate.domain.records import UsageGroup, from_row
from batchgate.domain.states import RowState
from batchgate.storage.schema import batches, requests

_SENT = (RowState.SUCCEEDED.value, RowState.FAILED.value)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


_TOTALS = (
    func.count().label("requests"),
    _count_if(requests.c.state == RowState.SUCCEEDED.value).label("succeeded"),
    _count_if(requests.c.state == RowState.FAILED.value).label("failed"),
    func.sum(requests.c.input_tokens).label("input_tokens"),
    func.sum(requests.c.output_tokens).label("output_tokens"),
    func.coalesce(func.sum(requests.c.cost_ticks), 0).label("cost_ticks"),
    # Rows that used tokens without a price: their cost is unknown, not zero.
    _count_if(
        requests.c.cost_ticks.is_(None)
        & ((requests.c.input_tokens > 0) | (requests.c.output_tokens > 0))
    ).label("unpriced"),
)
_COUNTS = ("requests", "succeeded", "failed", "input_tokens", "output_tokens", "cost_ticks",
           "unpriced")  # fmt: skip


class UsageRecords:
    """The usage aggregate; the Store provides ``read``."""

    if TYPE_CHECKING:

        def read(self) -> AbstractContextManager[Connection]: ...

    def usage(
        self, tenant: str | None, *, start: float, end: float, by_model: bool = False
    ) -> list[UsageGroup]:
        """Per tenant (and per model with ``by_model``), ordered so: the requests finished in
        ``[start, end)``, how many succeeded and failed, their input and output tokens, their
        cost in ticks and how many of them used tokens without a price (``unpriced``).
        ``tenant``: only that tenant's; None: every tenant's."""
        keys = [batches.c.tenant, *([requests.c.model] if by_model else [])]
        q = (
            select(*keys, *_TOTALS)
            .select_from(requests.join(batches, batches.c.id == requests.c.batch_id))
            .where(
                requests.c.finished_at >= start,
                requests.c.finished_at < end,
                requests.c.state.in_(_SENT),
            )
            .group_by(*keys)
            .order_by(*(k.asc().nulls_last() for k in keys))  # the same on both backends
        )
        if tenant is not None:
            q = q.where(batches.c.tenant == tenant)
        with self.read() as conn:
            groups = conn.execute(q).mappings().all()
        # PostgreSQL sums integers as NUMERIC (Decimal): every total leaves as an int.
        return [from_row(UsageGroup, {**g, **{k: int(g[k] or 0) for k in _COUNTS}}) for g in groups]
