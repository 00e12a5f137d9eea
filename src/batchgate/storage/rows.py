"""The Store's request rows (mixed into ``SqlStore``): inserted at ingest, recorded in groups,
ended unsent by sweeps, read back in input order for results and one at a time for jobs.

Every UPDATE that changes a row's state is built by ``row_move_sql`` from the row transition
table (``domain/states.py``): the one door for rows. The hot statements (record, and the lease
in ``leases.py``) and the bulk insert of ingest are plain driver SQL, measured to matter; the
rest is SQLAlchemy Core or ``text()`` with named parameters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, delete, func, select, text, tuple_
from sqlalchemy.engine import Connection

from batchgate.domain.records import FinishedRow, RequestRecord, from_row
from batchgate.domain.states import FINISHED_ROWS, RowState, advance_row
from batchgate.domain.sweeps import NOT_SENT, NOT_SENT_COUNTER
from batchgate.storage.schema import batches, requests
from batchgate.storage.sqltext import lit, lits
from batchgate.storage.types import IngestRow, RowResult

_R = RowState
_UNPRICED = (None, None)  # a row's price_in, price_out when its model has no price
_FINISHED_COLUMNS = ", ".join(FinishedRow._fields)
_FINISHED = f" AND state IN ({lits(sorted(FINISHED_ROWS))})"
_REQUEST_ITEM = (
    requests.c.batch_id, requests.c.line, requests.c.custom_id, requests.c.state,
    requests.c.status_code, requests.c.response, requests.c.error_code, requests.c.error_message,
    requests.c.finished_at, requests.c.cost_ticks,
)  # fmt: skip
_COUNTERS = (
    "completed", "failed", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens",
    "cost_ticks", "unpriced",
)  # fmt: skip
FREE_LEASE = "lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL"


def row_move_sql(
    source: RowState, target: RowState | Collection[RowState], assignments: str, where: str
) -> str:
    """The one door for row state changes: an UPDATE moving the rows in ``source`` that match
    ``where`` to ``target``, setting ``assignments`` too. The move is checked against the row
    transition table when the statement is built (an illegal one raises InvalidTransition);
    the states are the enums' values, never literals typed into a query. Several targets
    (a recorded result ends succeeded or failed) make the new state the statement's first
    driver parameter, ``?``: the caller checks each row's against the table.

    The source state is required with ``AND state = <source>``, or where ``where`` names
    ``{state}`` itself, there: the lease selects its rows in a locking subquery, and a state
    test outside it lets PostgreSQL rescan that subquery (which then skips the rows it just
    locked and returns others: more rows than its LIMIT)."""
    targets = (target,) if isinstance(target, RowState) else tuple(target)
    for each in targets:
        advance_row(source, each)
    state = lit(targets[0]) if len(targets) == 1 else "?"
    sets = f"state = {state}" + (f", {assignments}" if assignments else "")
    if "{state}" in where:
        return f"UPDATE requests SET {sets} WHERE {where.replace('{state}', lit(source))}"
    return f"UPDATE requests SET {sets} WHERE {where} AND state = {lit(source)}"


_FINAL_SETS = (
    "status_code = ?, response = ?, request_id = ?, error_code = ?, error_message = ?, "
    "input_tokens = ?, output_tokens = ?, cached_tokens = ?, reasoning_tokens = ?, "
    f"finished_at = ?, {FREE_LEASE}, "
    "cost_ticks = CAST(ROUND(? * price_in + ? * price_out) AS BIGINT)"
)
_MINE = "batch_id = ? AND line = ? AND lease_token = ?"
# ``attempts - ?``: 1 gives back an uncharged send (rate limited, overloaded, or met an open
# circuit), 0 keeps it counted (see engine/retry.py for which sends count).
_RETRY_SETS = (
    "next_attempt_at = ?, status_code = ?, error_code = ?, error_message = ?, "
    f"attempts = attempts - ?, {FREE_LEASE}"
)


def drop_rows(conn: Connection, batch_id: str) -> None:
    """Remove every request row of a batch (in the caller's transaction)."""
    conn.execute(delete(requests).where(requests.c.batch_id == batch_id))


class RowRecords:
    """Request rows; the SqlStore provides the connection helpers."""

    if TYPE_CHECKING:
        is_postgres: bool

        def read(self) -> AbstractContextManager[Connection]: ...
        def write(self) -> AbstractContextManager[Connection]: ...
        def _q(self, sql: str) -> str: ...
        def _add_tenant_spend(
            self, conn: Connection, costs: dict[str, int], now: float
        ) -> None: ...

    # -- ingest ---------------------------------------------------------------------------------

    def delete_rows(self, batch_id: str) -> None:
        with self.write() as conn:
            drop_rows(conn, batch_id)

    def insert_rows(self, batch_id: str, rows: Sequence[IngestRow], now: float) -> None:
        """A chunk of ingested rows: each born ``queued``, or ``failed`` when it cannot be
        sent (see ``INITIAL_ROWS``). One driver executemany: ingest's hot statement."""
        sql = self._q(
            "INSERT INTO requests (batch_id, line, custom_id, state, upstream, model, body, "
            "est_tokens, attempts, next_attempt_at, error_code, error_message, finished_at, "
            "input_tokens, output_tokens, cached_tokens, reasoning_tokens, price_in, price_out, "
            "reserve_ticks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, 0, 0, 0, 0, ?, ?, ?)"
        )
        params = [
            (
                batch_id, r.line, r.custom_id, r.state, r.upstream, r.model, r.body,
                r.est_tokens, r.error_code, r.error_message,
                None if r.state == _R.QUEUED else now,
                *(r.ticks or _UNPRICED), r.reserve_ticks,
            )
            for r in rows
        ]  # fmt: skip
        with self.write() as conn:
            conn.exec_driver_sql(sql, params)

    def duplicate_custom_ids(self, batch_id: str, limit: int) -> tuple[list[tuple[str, int]], int]:
        """(custom_id, line) of every repeat after the first occurrence: the first ``limit``
        and the total count. Memory is bounded by ``limit``, not by the batch."""
        inner = (
            "SELECT custom_id, line, ROW_NUMBER() OVER (PARTITION BY custom_id ORDER BY line) AS n "
            "FROM requests WHERE batch_id = :batch_id"
        )
        with self.read() as conn:
            total = conn.execute(
                text(f"SELECT COUNT(*) FROM ({inner}) d WHERE n > 1"), {"batch_id": batch_id}
            ).scalar()
            rows = conn.execute(
                text(f"SELECT custom_id, line FROM ({inner}) d WHERE n > 1 ORDER BY line "
                     "LIMIT :limit"),
                {"batch_id": batch_id, "limit": limit},
            ).all()  # fmt: skip
        return [(str(r.custom_id), int(r.line)) for r in rows], int(total or 0)

    # -- recording --------------------------------------------------------------------------

    def record(self, results: Sequence[RowResult], now: float) -> int:
        """Write a group of results in one transaction; each is applied only if its lease
        token still holds. Batch counters, usage and cost move in the same transaction.

        Cost is computed here, by the database, from the prices the row was given at ingest
        (ticks per token, discount applied): ``round(input_tokens * price_in + output_tokens *
        price_out)`` ticks, NULL when the row has no price. The lease-token condition makes a
        row's cost land exactly once, with its tokens; the batch's ``cost_ticks`` adds the
        applied rows' costs and ``unpriced`` counts the applied rows that used tokens without
        a price (their cost is unknown, not zero); the tenant's spend of the day adds them too.
        The worker's hot path stays as it was: it never looks a price up."""
        for state in {r.state for r in results}:
            advance_row(_R.LEASED, state)  # a result is one of the moves a leased row may make
        sums: dict[str, list[int]] = defaultdict(lambda: [0] * len(_COUNTERS))
        with self.write() as conn:
            applied = self._record_retries(conn, [r for r in results if r.state == _R.QUEUED])
            finals = [r for r in results if r.state != _R.QUEUED]
            applied += self._record_finals(conn, finals, now, sums)
            self._bump_counters(conn, sums)
            self._add_tenant_spend(conn, {bid: s[6] for bid, s in sums.items()}, now)
        return applied

    @cached_property
    def _retry_sql(self) -> str:
        return self._q(row_move_sql(_R.LEASED, _R.QUEUED, _RETRY_SETS, _MINE))

    @cached_property
    def _final_sql(self) -> str:
        return self._q(row_move_sql(_R.LEASED, (_R.SUCCEEDED, _R.FAILED), _FINAL_SETS, _MINE))

    def _record_retries(self, conn: Connection, retries: Sequence[RowResult]) -> int:
        params = [
            (r.next_attempt_at, r.status_code, r.error_code, r.error_message,
             0 if r.charged else 1, r.batch_id, r.line, r.lease_token)
            for r in retries
        ]  # fmt: skip
        return sum(x is not None for x in self._each(conn, self._retry_sql, params))

    def _record_finals(
        self, conn: Connection, finals: Sequence[RowResult], now: float,
        sums: dict[str, list[int]],
    ) -> int:  # fmt: skip
        params = [
            (r.state, r.status_code, r.response, r.request_id, r.error_code, r.error_message,
             r.input_tokens, r.output_tokens, r.cached_tokens, r.reasoning_tokens, now,
             r.input_tokens, r.output_tokens, r.batch_id, r.line, r.lease_token)
            for r in finals
        ]  # fmt: skip
        applied = 0
        got_all = self._each(conn, self._final_sql, params, "1, cost_ticks")
        for r, got in zip(finals, got_all, strict=True):
            if got is not None:
                applied += 1
                _add(sums[r.batch_id], r, got[1])
        return applied

    def _each(
        self, conn: Connection, sql: str, params: list[tuple[Any, ...]], returning: str = "1"
    ) -> list[tuple[Any, ...] | None]:
        """Run ``sql`` once per parameter tuple; its ``RETURNING`` row where it changed a row,
        else None. PostgreSQL gets one pipelined round trip for the whole group, SQLite a loop
        (it has no round trips)."""
        if not params:
            return []
        cur: Any = conn.connection.cursor()
        sql = f"{sql} RETURNING {returning}"
        try:
            if not self.is_postgres:
                out = []
                for p in params:
                    cur.execute(sql, p)
                    out.append(cur.fetchone())
                return out
            cur.executemany(sql, params, returning=True)
            out = [cur.fetchone()]
            while cur.nextset():
                out.append(cur.fetchone())
            return out
        finally:
            cur.close()

    def _bump_counters(self, conn: Connection, sums: dict[str, list[int]]) -> None:
        sets = ", ".join(f"{c} = {c} + ?" for c in _COUNTERS)
        if sums:
            conn.exec_driver_sql(
                self._q(f"UPDATE batches SET {sets} WHERE id = ?"),
                [(*v, k) for k, v in sorted(sums.items())],
            )

    # -- cancel, expiry and budgets end queued rows -------------------------------------------

    def end_queued_rows(
        self, batch_id: str, code: str, now: float, message: str | None = None
    ) -> int:
        """Queued rows of a batch end without being sent, with ``code`` (``batch_cancelled``,
        ``batch_expired`` or ``budget_exceeded``) and ``message`` (default: the code's)."""
        state, default = NOT_SENT[code]
        sql = row_move_sql(
            _R.QUEUED,
            state,
            "error_code = :code, error_message = :message, finished_at = :now",
            "batch_id = :batch_id",
        )
        values = {"code": code, "message": message or default, "now": now, "batch_id": batch_id}
        with self.write() as conn:
            n = int(conn.execute(text(sql), values).rowcount)
            if n:
                counts = {"failed": n}
                column = NOT_SENT_COUNTER.get(state)
                if column is not None:
                    counts[column] = n
                sets = ", ".join(f"{c} = {c} + :{c}" for c in counts)
                conn.execute(text(f"UPDATE batches SET {sets} WHERE id = :id"),
                             {**counts, "id": batch_id})  # fmt: skip
        return n

    # -- reading rows back ------------------------------------------------------------------

    def iter_finished_rows(self, batch_id: str, *, chunk: int = 2000) -> Iterator[FinishedRow]:
        """Every row of a batch in input order, a chunk at a time (bounded memory)."""
        after = 0
        while True:
            rows = self.rows_after(batch_id, after, chunk)
            if not rows:
                return
            yield from rows
            after = rows[-1].line

    def rows_after(
        self, batch_id: str, after: int, limit: int, *, finished_only: bool = False
    ) -> list[FinishedRow]:
        """Up to ``limit`` rows with ``line > after`` in input order; ``finished_only`` skips
        rows still open (the partial results of a running batch)."""
        sql = text(
            f"SELECT {_FINISHED_COLUMNS} FROM requests WHERE batch_id = :batch_id "
            f"AND line > :after{_FINISHED if finished_only else ''} ORDER BY line LIMIT :limit"
        )
        with self.read() as conn:
            got = conn.execute(sql, {"batch_id": batch_id, "after": after, "limit": limit})
            return [FinishedRow._make(r) for r in got]

    def _requests_of(self, tenant: str | None, dialect: str) -> Select[Any]:
        q = (
            select(*_REQUEST_ITEM, batches.c.created_at)
            .select_from(requests.join(batches, batches.c.id == requests.c.batch_id))
            .where(batches.c.dialect == dialect)
        )
        return q if tenant is None else q.where(batches.c.tenant == tenant)

    def get_request(
        self, batch_id: str, line: int, *, dialect: str, tenant: str | None = None
    ) -> RequestRecord | None:
        """One request row of a batch of ``dialect``, with its batch's ``created_at``."""
        q = self._requests_of(tenant, dialect).where(
            requests.c.batch_id == batch_id, requests.c.line == line
        )
        with self.read() as conn:
            r = conn.execute(q).mappings().first()
        return from_row(RequestRecord, r) if r else None

    def list_requests(
        self, tenant: str | None, *, dialect: str, before: tuple[str, int] | None, limit: int
    ) -> tuple[list[RequestRecord], bool]:
        """Request rows of every batch of ``dialect``, newest first (batch, then line, from
        the last); ``before`` (batch id, line): the page after that row."""
        q = self._requests_of(tenant, dialect)
        if before is not None:
            q = q.where(tuple_(requests.c.batch_id, requests.c.line) < tuple_(*before))
        q = q.order_by(requests.c.batch_id.desc(), requests.c.line.desc()).limit(limit + 1)
        with self.read() as conn:
            rows = [from_row(RequestRecord, r) for r in conn.execute(q).mappings()]
        return rows[:limit], len(rows) > limit

    def count_rows(self, batch_id: str) -> dict[str, int]:
        """How many rows of a batch are in each state (checks in tests and the CLI)."""
        q = (
            select(requests.c.state, func.count())
            .where(requests.c.batch_id == batch_id)
            .group_by(requests.c.state)
        )
        with self.read() as conn:
            return {str(s): int(n) for s, n in conn.execute(q).all()}


def _add(s: list[int], r: RowResult, cost: int | None) -> None:
    """Add one applied final result to its batch's counter sums (in ``_COUNTERS`` order)."""
    s[0 if r.state == _R.SUCCEEDED else 1] += 1
    s[2] += r.input_tokens
    s[3] += r.output_tokens
    s[4] += r.cached_tokens
    s[5] += r.reasoning_tokens
    if cost is not None:
        s[6] += cost
    elif r.input_tokens or r.output_tokens:
        s[7] += 1
