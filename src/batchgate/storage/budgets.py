"""The Store's budgets (mixed into ``Store``): tenant budgets, each tenant's spend per day, and
the budget-aware parts of leasing, recording and sweeping (see ``domain/budget.py``).

Spent and reserved are always read in one statement, so on PostgreSQL (READ COMMITTED) they
come from one snapshot: a record moves a row's reservation into spend in one transaction, and
the reader sees both sides of it or neither. Leasers of one budget are serialized by row locks
on the budget's rows (the tenant's ``budgets`` row, the batch row), taken in one order (budgets
by tenant, then batches by id) so that two leasers never deadlock; SQLite serializes every
write transaction anyway.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.engine import Connection

from batchgate.domain.budget import (
    EXCEEDED,
    batch_ended_message,
    day_of,
    period_start_day,
    tenant_ended_message,
)
from batchgate.domain.records import TenantBudget, from_row
from batchgate.domain.states import BatchStatus, RowState
from batchgate.domain.sweeps import Sweep
from batchgate.errors import BudgetNotFound
from batchgate.storage.schema import budgets
from batchgate.storage.sqltext import lit, lits

_S = BatchStatus
_TENANT_SPENT = (
    "COALESCE((SELECT SUM(cost_ticks) FROM tenant_spend WHERE tenant = ? AND day >= ?), 0)"
)
_TENANT_RESERVED = (
    "COALESCE((SELECT SUM(r.reserve_ticks) FROM requests r JOIN batches b ON b.id = r.batch_id "
    f"WHERE b.tenant = ? AND b.status IN ({lits([_S.IN_PROGRESS, _S.CANCELLING])}) "
    f"AND r.state = {lit(RowState.LEASED)} "
    "AND r.reserve_ticks IS NOT NULL), 0)"
)
_BATCH_RESERVED = (
    "COALESCE((SELECT SUM(reserve_ticks) FROM requests WHERE batch_id = ? "
    f"AND state = {lit(RowState.LEASED)} "
    "AND reserve_ticks IS NOT NULL), 0)"
)
_QUEUED = (
    "EXISTS (SELECT 1 FROM requests q WHERE q.batch_id = b.id "
    f"AND q.state = {lit(RowState.QUEUED)})"
)


@dataclass(frozen=True, slots=True)
class BudgetCap:
    """The budgets a batch is under while it is leased: its own, its tenant's, or both."""

    batch_ticks: int | None
    tenant: str | None  # set when the tenant has a budget
    since_day: int = 0  # the first day of the tenant budget's period


class BudgetRecords:
    """Budget rows and budget arithmetic; the Store provides the connection helpers."""

    if TYPE_CHECKING:
        is_postgres: bool

        def read(self) -> AbstractContextManager[Connection]: ...
        def write(self) -> AbstractContextManager[Connection]: ...
        def _q(self, sql: str) -> str: ...

    # -- tenant budgets ---------------------------------------------------------------------

    def set_budget(self, tenant: str, ticks: int, period: str, now: int) -> TenantBudget:
        """Set (or replace) ``tenant``'s budget; it holds from the next lease on."""
        row = {"tenant": tenant, "budget_ticks": ticks, "period": period, "updated_at": now}
        with self.write() as conn:
            changed = conn.execute(
                update(budgets).where(budgets.c.tenant == tenant).values(**row)
            ).rowcount
            if not changed:
                conn.execute(insert(budgets).values(**row))
        return TenantBudget(tenant, ticks, period, now)

    def delete_budget(self, tenant: str) -> None:
        with self.write() as conn:
            if not conn.execute(delete(budgets).where(budgets.c.tenant == tenant)).rowcount:
                raise BudgetNotFound(
                    f"Tenant {tenant!r} has no budget; `batchgate budgets list` shows them.",
                    param="tenant",
                )

    def get_budget(self, tenant: str) -> TenantBudget | None:
        with self.read() as conn:
            r = conn.execute(select(budgets).where(budgets.c.tenant == tenant)).mappings().first()
        return from_row(TenantBudget, r) if r else None

    def list_budgets(self, now: float, tenant: str | None = None) -> list[TenantBudget]:
        """Every tenant budget (or ``tenant``'s alone), by tenant, with ``spent_ticks`` in its
        current period and ``reserved_ticks`` held by the tenant's leased rows."""
        sql = self._q(f"SELECT {_TENANT_SPENT}, {_TENANT_RESERVED}")
        q = select(budgets).order_by(budgets.c.tenant)
        if tenant is not None:
            q = q.where(budgets.c.tenant == tenant)
        out = []
        with self.read() as conn:
            rows = conn.execute(q).mappings().all()
            for r in rows:
                since = period_start_day(r["period"], now)
                spent, reserved = conn.exec_driver_sql(sql, (r["tenant"], since, r["tenant"])).one()
                held = {"spent_ticks": int(spent), "reserved_ticks": int(reserved)}
                out.append(from_row(TenantBudget, {**r, **held}))
        return out

    # -- leasing under a budget ---------------------------------------------------------------

    def _budget_caps(
        self, conn: Connection, batch_ids: Collection[str], now: float
    ) -> dict[str, BudgetCap]:
        """The budgets of the batches among ``batch_ids`` that are under one; on PostgreSQL
        their rows are locked (tenants, then batches) until the lease commits."""
        marks = ",".join("?" for _ in batch_ids)
        found = conn.exec_driver_sql(
            self._q(
                "SELECT b.id, b.budget_ticks, t.tenant, t.period FROM batches b "
                f"LEFT JOIN budgets t ON t.tenant = b.tenant WHERE b.id IN ({marks}) "
                "AND (b.budget_ticks IS NOT NULL OR t.tenant IS NOT NULL)"
            ),
            tuple(batch_ids),
        ).all()
        caps = {
            str(bid): BudgetCap(
                None if ticks is None else int(ticks), tenant,
                period_start_day(period, now) if tenant is not None else 0,
            )
            for bid, ticks, tenant, period in found
        }  # fmt: skip
        if caps and self.is_postgres:
            tenants = sorted({c.tenant for c in caps.values() if c.tenant is not None})
            for tenant in tenants:
                conn.exec_driver_sql(
                    "SELECT 1 FROM budgets WHERE tenant = %s FOR UPDATE", (tenant,)
                )
            for bid in sorted(caps):
                conn.exec_driver_sql("SELECT 1 FROM batches WHERE id = %s FOR UPDATE", (bid,))
        return caps

    def _headroom(self, conn: Connection, batch_id: str, cap: BudgetCap) -> int:
        """What may still be reserved now: the smaller of the batch's and the tenant's
        ``budget - spent - reserved``."""
        room: list[int] = []
        if cap.batch_ticks is not None:
            got = conn.exec_driver_sql(
                self._q(f"SELECT cost_ticks, {_BATCH_RESERVED} FROM batches WHERE id = ?"),
                (batch_id, batch_id),
            ).one()
            room.append(cap.batch_ticks - int(got[0]) - int(got[1]))
        if cap.tenant is not None:
            tenant = conn.exec_driver_sql(
                self._q(f"SELECT budget_ticks, {_TENANT_SPENT}, {_TENANT_RESERVED} FROM budgets "
                        "WHERE tenant = ?"),
                (cap.tenant, cap.since_day, cap.tenant, cap.tenant),
            ).first()  # fmt: skip
            if tenant is not None:  # else the budget was removed meanwhile
                room.append(int(tenant[0]) - int(tenant[1]) - int(tenant[2]))
        return min(room, default=2**62)

    def _within(
        self, conn: Connection, batch_id: str, cap: BudgetCap, candidates: Sequence[Any]
    ) -> list[int]:
        """The lines of ``candidates`` ((line, reserve_ticks) in order) that may be leased: each
        while the headroom left before it is above zero, so the last one may pass the budget by
        at most its own reservation."""
        room = self._headroom(conn, batch_id, cap)
        lines = []
        for line, reserve in candidates:
            if room <= 0:
                break
            lines.append(int(line))
            room -= int(reserve or 0)
        return lines

    # -- recording spend ------------------------------------------------------------------------

    def _add_tenant_spend(self, conn: Connection, costs: dict[str, int], now: float) -> None:
        """Add each batch's new cost to its tenant's spend of today (tenants in order)."""
        costs = {bid: c for bid, c in costs.items() if c}
        if not costs:
            return
        owners = conn.exec_driver_sql(
            self._q(f"SELECT id, tenant FROM batches WHERE id IN ({','.join('?' for _ in costs)})"),
            tuple(costs),
        ).all()
        per_tenant: dict[str, int] = defaultdict(int)
        for bid, tenant in owners:
            per_tenant[str(tenant)] += costs[str(bid)]
        conn.exec_driver_sql(
            self._q(
                "INSERT INTO tenant_spend (tenant, day, cost_ticks) VALUES (?, ?, ?) "
                "ON CONFLICT (tenant, day) DO UPDATE "
                "SET cost_ticks = tenant_spend.cost_ticks + excluded.cost_ticks"
            ),
            [(t, day_of(now), c) for t, c in sorted(per_tenant.items())],
        )

    # -- sweeping -----------------------------------------------------------------------------

    def budget_sweeps(self, now: float) -> list[Sweep]:
        """Running batches with rows still queued whose budget, or whose tenant's budget, is
        reached: their queued rows end with ``budget_exceeded``."""
        running = f"b.status = {lit(_S.IN_PROGRESS)} AND {_QUEUED}"
        out: list[Sweep] = []
        with self.read() as conn:
            own = conn.execute(text(
                "SELECT b.id, b.budget_ticks FROM batches b WHERE b.budget_ticks IS NOT NULL "
                f"AND b.cost_ticks >= b.budget_ticks AND {running}"
            )).all()  # fmt: skip
            out += [
                Sweep(str(r.id), EXCEEDED, batch_ended_message(int(r.budget_ticks))) for r in own
            ]
            for b in conn.execute(text("SELECT * FROM budgets ORDER BY tenant")).mappings().all():
                if self._spent(conn, b["tenant"], b["period"], now) < int(b["budget_ticks"]):
                    continue
                ids = conn.execute(
                    text(f"SELECT b.id FROM batches b WHERE b.tenant = :tenant AND {running}"),
                    {"tenant": b["tenant"]},
                ).scalars()
                why = tenant_ended_message(
                    str(b["tenant"]), str(b["period"]), int(b["budget_ticks"])
                )
                out += [Sweep(str(bid), EXCEEDED, why) for bid in ids]
        return out

    def _spent(self, conn: Connection, tenant: str, period: str, now: float) -> int:
        """What ``tenant`` spent in the budget period that ``now`` falls in."""
        since = period_start_day(period, now)
        sql = self._q(f"SELECT {_TENANT_SPENT}")
        return int(conn.exec_driver_sql(sql, (tenant, since)).scalar() or 0)
