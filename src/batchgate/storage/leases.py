"""The Store's leasing (mixed into ``Store``): which batches may send, leasing their due rows
fairly (a budgeted batch only within its headroom, see ``budgets.py``), heartbeats, and
handing rows back when a worker stops or dies.

A lease is a token, an owner and an expiry on the row: every write that acts on a leased row is
conditional on the token, so a worker whose lease was taken over cannot overwrite the new
owner's result. PostgreSQL leases with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from batchgate.domain.states import RowState
from batchgate.storage.budgets import BudgetCap
from batchgate.storage.rows import FREE_LEASE, row_move_sql
from batchgate.storage.sqltext import lit
from batchgate.storage.types import LeasedRow

_R = RowState
_LEASED = "line, custom_id, body, est_tokens, attempts"  # what a lease returns of each row
_TAKE = "lease_token = ?, lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1"


class LeaseRecords:
    """Leases on request rows; the Store provides the connection helpers and the budgets."""

    if TYPE_CHECKING:

        def read(self) -> AbstractContextManager[Connection]: ...
        def write(self) -> AbstractContextManager[Connection]: ...
        def _q(self, sql: str) -> str: ...
        def _skip_locked(self) -> str: ...
        def _budget_caps(
            self, conn: Connection, batch_ids: Collection[str], now: float
        ) -> dict[str, BudgetCap]: ...
        def _within(
            self, conn: Connection, batch_id: str, cap: BudgetCap, candidates: Sequence[Any]
        ) -> list[int]: ...

    def lease(
        self,
        batch_ids: Sequence[str],
        upstream: str,
        limit: int,
        *,
        owner: str,
        token: str,
        now: float,
        ttl: float,
    ) -> list[LeasedRow]:
        """Lease up to ``limit`` due rows for ``upstream``, shared fairly across ``batch_ids``.
        A batch under a budget (its own or its tenant's) gives only the rows its headroom
        allows (see ``budgets.py``)."""
        if not batch_ids or limit <= 0:
            return []
        out: list[LeasedRow] = []
        remaining = list(batch_ids)
        leased = (token, owner, now + ttl)
        with self.write() as conn:
            caps = self._budget_caps(conn, batch_ids, now)
            while remaining and len(out) < limit:
                share = max(1, (limit - len(out)) // len(remaining))
                still: list[str] = []
                for bid in remaining:
                    cap = caps.get(bid)
                    if cap is None:
                        got = conn.exec_driver_sql(
                            self._lease_sql, (*leased, bid, upstream, now, share)
                        ).all()
                    else:
                        got = self._lease_capped(conn, bid, cap, upstream, share, leased, now)
                    out.extend(
                        LeasedRow(bid, r[0], r[1], upstream, bytes(r[2]), r[3], r[4], token)
                        for r in got
                    )
                    if len(got) == share:
                        still.append(bid)
                    if len(out) >= limit:
                        break
                remaining = still
        out.sort(key=lambda r: (r.batch_id, r.line))
        return out

    @cached_property
    def _lease_sql(self) -> str:
        due = (
            "(batch_id, line) IN (SELECT batch_id, line FROM requests WHERE batch_id = ? "
            "AND upstream = ? AND state = {state} AND next_attempt_at <= ? "
            f"ORDER BY line LIMIT ?{self._skip_locked()})"
        )
        return self._q(f"{row_move_sql(_R.QUEUED, _R.LEASED, _TAKE, due)} RETURNING {_LEASED}")

    def _lease_capped(
        self, conn: Connection, batch_id: str, cap: BudgetCap, upstream: str, share: int,
        leased: tuple[str, str, float], now: float,
    ) -> list[Any]:  # fmt: skip
        """``_lease_sql`` for a batch under a budget: the due rows first (locked on
        PostgreSQL), then only those within the headroom are leased."""
        due = conn.exec_driver_sql(
            self._q(
                "SELECT line, reserve_ticks FROM requests WHERE batch_id = ? AND upstream = ? "
                f"AND state = {lit(_R.QUEUED)} AND next_attempt_at <= ? ORDER BY line LIMIT ?"
                f"{self._skip_locked()}"
            ),
            (batch_id, upstream, now, share),
        ).all()
        lines = self._within(conn, batch_id, cap, due)
        if not lines:
            return []
        marks = ",".join("?" for _ in lines)
        move = row_move_sql(_R.QUEUED, _R.LEASED, _TAKE, f"batch_id = ? AND line IN ({marks})")
        return list(conn.exec_driver_sql(
            self._q(f"{move} RETURNING {_LEASED}"),
            (*leased, batch_id, *lines),
        ).all())  # fmt: skip

    def heartbeat(self, owner: str, until: float) -> int:
        """Extend every lease ``owner`` holds; a live worker never loses its rows."""
        sql = text(
            "UPDATE requests SET lease_expires_at = :until "
            f"WHERE lease_owner = :owner AND state = {lit(_R.LEASED)}"
        )
        with self.write() as conn:
            return int(conn.execute(sql, {"until": until, "owner": owner}).rowcount)

    def release_leases(self, owner: str) -> int:
        """A worker stopping cleanly hands its unsent rows back at once."""
        sql = text(row_move_sql(_R.LEASED, _R.QUEUED, FREE_LEASE, "lease_owner = :owner"))
        with self.write() as conn:
            return int(conn.execute(sql, {"owner": owner}).rowcount)

    def reclaim_expired_leases(self, now: float) -> int:
        """Put rows whose lease ran out (their worker died) back in the queue."""
        sql = text(row_move_sql(
            _R.LEASED, _R.QUEUED, f"{FREE_LEASE}, next_attempt_at = :now", "lease_expires_at < :now"
        ))  # fmt: skip
        with self.write() as conn:
            return int(conn.execute(sql, {"now": now}).rowcount)

    def release_all_leases(self, now: float) -> tuple[int, int]:
        """Requeue every leased row and free every batch claim, expired or not: only for a
        caller that knows no other process uses this database (``batchgate run`` holds a lock
        on it), so the work of a killed run resumes at once instead of after lease expiry.
        Returns (rows requeued, claims freed)."""
        rows_sql = text(
            row_move_sql(_R.LEASED, _R.QUEUED, f"{FREE_LEASE}, next_attempt_at = :now", "1 = 1")
        )
        claims_sql = text(
            "UPDATE batches SET claim_token = NULL, claim_expires_at = NULL "
            "WHERE claim_token IS NOT NULL"
        )
        with self.write() as conn:
            rows = conn.execute(rows_sql, {"now": now}).rowcount
            claims = conn.execute(claims_sql).rowcount
        return int(rows), int(claims)

    def count_retrying(self, batch_id: str) -> int:
        """Rows of a batch waiting to be sent again after a retryable failure."""
        sql = text(
            "SELECT COUNT(*) FROM requests WHERE batch_id = :batch_id "
            f"AND state = {lit(_R.QUEUED)} AND error_code = 'retrying'"
        )
        with self.read() as conn:
            return int(conn.execute(sql, {"batch_id": batch_id}).scalar() or 0)
