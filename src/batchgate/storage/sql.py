"""The Store: every use-case's reads and writes, on SQLite (embedded) or PostgreSQL (scale-out).

All methods are synchronous and short; async callers run them in a thread (see ``Store.call``).
Hot-path statements (lease, record) are plain SQL on the driver; the rest is SQLAlchemy Core.
Every write that acts on leased rows is conditional on the lease token, so a worker whose lease
was taken over cannot overwrite the new owner's result.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

import orjson
from sqlalchemy import Select, create_engine, delete, event, insert, select, tuple_, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from batchgate.domain.budget import EXCEEDED
from batchgate.domain.states import (
    ACTIVE,
    OPEN_ROWS,
    TERMINAL,
    BatchStatus,
    RowState,
    transition,
)
from batchgate.errors import BatchNotFound, StoreUnavailable
from batchgate.storage import migrate
from batchgate.storage.budgets import BudgetRecords
from batchgate.storage.files import FileRecords
from batchgate.storage.keys import KeyRecords
from batchgate.storage.leases import LeaseRecords
from batchgate.storage.schema import batches, files, requests
from batchgate.storage.types import IngestRow, Row, RowResult
from batchgate.storage.usage import UsageRecords

T = TypeVar("T")

_REQUEST_ITEM = (
    requests.c.batch_id, requests.c.line, requests.c.custom_id, requests.c.state,
    requests.c.status_code, requests.c.response, requests.c.error_code, requests.c.error_message,
    requests.c.finished_at, requests.c.cost_ticks,
)  # fmt: skip
_UNPRICED = (None, None)  # a row's price_in, price_out when its model has no price
# How a row never sent ends, by error code: its state and default message.
_NOT_SENT: dict[str, tuple[RowState, str]] = {
    "batch_cancelled": (RowState.CANCELED, "This request was not sent: the batch was cancelled."),
    "batch_expired": (
        RowState.EXPIRED,
        "This request was not sent: the batch expired before it could run.",
    ),
    EXCEEDED: (RowState.FAILED, "This request was not sent: a budget was reached."),
}
# Of a batch's ``failed``: the counter of rows that a cancel or an expiry kept from being sent.
_NOT_SENT_COUNTER = {RowState.CANCELED: "canceled", RowState.EXPIRED: "expired"}
_FINAL_FOR_COUNTS = {RowState.SUCCEEDED.value: "completed", RowState.FAILED.value: "failed"}


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3; a bare path means SQLite."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{os.path.abspath(url)}"
    return url


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, pool_size=8, max_overflow=8)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash (kill -9)
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front: no deadlock when a reader upgrades to writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Store(FileRecords, LeaseRecords, BudgetRecords, KeyRecords, UsageRecords):
    """Batches and their rows in one SQL database (see the module docstring), with files
    (``files.py``), leasing (``leases.py``), budgets (``budgets.py``), API keys (``keys.py``)
    and usage (``usage.py``) mixed in."""

    def __init__(self, url: str, *, threads: int = 8) -> None:
        self.url = normalize_url(url)
        self.is_postgres = self.url.startswith("postgresql")
        if self.is_postgres:
            self._write = create_engine(self.url, pool_size=threads, max_overflow=4)
            self._read = self._write
        else:
            self._write = _sqlite_engine(self.url, immediate=True)
            self._read = _sqlite_engine(self.url, immediate=False)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="store")

    # -- plumbing ---------------------------------------------------------------------------

    def migrate(self) -> None:
        migrate.upgrade(self._write)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._write.dispose()
        self._read.dispose()

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a Store method (or any blocking function) on the store's thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))

    @contextmanager
    def write(self) -> Iterator[Connection]:
        try:
            with self._write.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreUnavailable(f"database error: {exc.orig}") from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self._read.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreUnavailable(f"database error: {exc.orig}") from exc

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.is_postgres else sql

    def _skip_locked(self) -> str:
        return " FOR UPDATE SKIP LOCKED" if self.is_postgres else ""

    def ping(self) -> None:
        with self.read() as conn:
            conn.exec_driver_sql("SELECT 1")

    # -- batches ----------------------------------------------------------------------------

    def insert_batch(self, row: Row) -> None:
        with self.write() as conn:
            conn.execute(insert(batches).values(**row))

    def get_batch(self, batch_id: str, tenant: str | None = None) -> Row | None:
        q = select(batches).where(batches.c.id == batch_id)
        if tenant is not None:
            q = q.where(batches.c.tenant == tenant)
        with self.read() as conn:
            r = conn.execute(q).mappings().first()
        return dict(r) if r else None

    def list_batches(
        self,
        tenant: str | None,
        *,
        after: str | None,
        limit: int,
        dialect: str | Collection[str] | None = None,
        before: str | None = None,
    ) -> tuple[list[Row], bool]:
        """Newest first. ``after``: the page older than that id; ``before``: the page newer
        than that id (still newest first). ``dialect``: one name, or any of several."""
        q = select(batches)
        if tenant is not None:
            q = q.where(batches.c.tenant == tenant)
        if dialect is not None:
            q = q.where(batches.c.dialect.in_([dialect] if isinstance(dialect, str) else dialect))
        if after:
            q = q.where(batches.c.id < after)
        if before:
            q = q.where(batches.c.id > before).order_by(batches.c.id.asc())
        else:
            q = q.order_by(batches.c.id.desc())
        with self.read() as conn:
            rows = [dict(r) for r in conn.execute(q.limit(limit + 1)).mappings()]
        page = rows[:limit]
        return (page[::-1] if before else page), len(rows) > limit

    def delete_batch(self, batch_id: str) -> None:
        """Remove an ended batch, its rows and its result files' rows."""
        with self.write() as conn:
            row = conn.execute(select(batches).where(batches.c.id == batch_id)).mappings().first()
            if row is None:
                return
            for fid in (row["output_file_id"], row["error_file_id"]):
                if fid:
                    conn.execute(delete(files).where(files.c.id == fid))
            conn.execute(delete(requests).where(requests.c.batch_id == batch_id))
            conn.execute(delete(batches).where(batches.c.id == batch_id))

    def request_cancel(self, batch_id: str, tenant: str | None, now: int) -> Row:
        """Move a batch to ``cancelling`` (idempotent once cancelling or cancelled)."""
        with self.write() as conn:
            q = select(batches.c.status).where(batches.c.id == batch_id)
            if tenant is not None:
                q = q.where(batches.c.tenant == tenant)
            status = conn.execute(q).scalar()
            if status is None:
                raise BatchNotFound(f"No batch found with id '{batch_id}'.")
            if status not in (BatchStatus.CANCELLING, BatchStatus.CANCELLED):
                stamp = transition(status, BatchStatus.CANCELLING)
                conn.execute(
                    update(batches)
                    .where(batches.c.id == batch_id)
                    .values(status=BatchStatus.CANCELLING.value, **{stamp: now})
                )
        row = self.get_batch(batch_id)
        assert row is not None
        return row

    # -- claims (validation and finalization run under a batch claim) ------------------------

    def claim_batch(
        self, statuses: Sequence[str], token: str, now: float, ttl: float
    ) -> Row | None:
        """Claim one batch in ``statuses`` whose claim is free or expired; None if there is none."""
        marks = ",".join("?" for _ in statuses)
        # A batch cancelled before it was ever validated still needs its rows (each one ends
        # as a cancelled result): it is claimed for validation too, once.
        never_read = (
            "(status = 'cancelling' AND in_progress_at IS NULL AND failed_at IS NULL)"
            if BatchStatus.VALIDATING in statuses
            else "1 = 0"
        )
        sql = self._q(
            f"UPDATE batches SET claim_token = ?, claim_expires_at = ? WHERE id = ("
            f"SELECT id FROM batches WHERE (status IN ({marks}) OR {never_read}) "
            f"AND (claim_expires_at IS NULL OR claim_expires_at < ?) "
            f"ORDER BY created_at LIMIT 1{self._skip_locked()}) RETURNING id"
        )
        with self.write() as conn:
            got = conn.exec_driver_sql(sql, (token, now + ttl, *statuses, now)).scalar()
        return self.get_batch(got) if got else None

    def claim_finalizable(self, token: str, now: float, ttl: float) -> Row | None:
        """Claim a batch that has no open row left and is not ended yet."""
        sql = self._q(
            "UPDATE batches SET claim_token = ?, claim_expires_at = ? WHERE id = ("
            "SELECT id FROM batches WHERE status IN ('in_progress', 'cancelling', 'finalizing') "
            "AND completed + failed >= total "
            "AND (claim_expires_at IS NULL OR claim_expires_at < ?) "
            f"ORDER BY created_at LIMIT 1{self._skip_locked()}) RETURNING id"
        )
        with self.write() as conn:
            got = conn.exec_driver_sql(sql, (token, now + ttl, now)).scalar()
        return self.get_batch(got) if got else None

    def renew_claim(self, batch_id: str, token: str, until: float) -> bool:
        with self.write() as conn:
            res = conn.execute(
                update(batches)
                .where(batches.c.id == batch_id, batches.c.claim_token == token)
                .values(claim_expires_at=until)
            )
        return res.rowcount == 1

    # -- ingest -----------------------------------------------------------------------------

    def delete_rows(self, batch_id: str) -> None:
        with self.write() as conn:
            conn.execute(delete(requests).where(requests.c.batch_id == batch_id))

    def insert_rows(self, batch_id: str, rows: Sequence[IngestRow], now: float) -> None:
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
                None if r.state == RowState.QUEUED else now,
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
            "FROM requests WHERE batch_id = ?"
        )
        with self.read() as conn:
            total = conn.exec_driver_sql(
                self._q(f"SELECT COUNT(*) FROM ({inner}) d WHERE n > 1"), (batch_id,)
            ).scalar()
            rows = conn.exec_driver_sql(
                self._q(
                    f"SELECT custom_id, line FROM ({inner}) d WHERE n > 1 ORDER BY line LIMIT ?"
                ),
                (batch_id, limit),
            ).all()
        return [(str(r[0]), int(r[1])) for r in rows], int(total or 0)

    def start_batch(
        self, batch_id: str, token: str, *, total: int, failed: int, model: str | None, now: int
    ) -> bool:
        """validating -> in_progress with its counts; False if the batch left ``validating``
        meanwhile (a cancel), in which case only the counts are set."""
        with self.write() as conn:
            status = conn.execute(
                select(batches.c.status).where(
                    batches.c.id == batch_id, batches.c.claim_token == token
                )
            ).scalar()
            if status is None:
                return False
            values: dict[str, Any] = {
                "total": total, "failed": failed, "model": model,
                "claim_token": None, "claim_expires_at": None,
            }  # fmt: skip
            started = bool(status == BatchStatus.VALIDATING)
            if started:
                transition(status, BatchStatus.IN_PROGRESS)
                values["status"] = BatchStatus.IN_PROGRESS.value
            # Stamped even for a batch cancelled meanwhile: its input was read (see claim_batch).
            values["in_progress_at"] = now
            conn.execute(update(batches).where(batches.c.id == batch_id).values(**values))
        return started

    def fail_batch(self, batch_id: str, token: str, errors: list[dict[str, Any]], now: int) -> None:
        """validating -> failed with line-numbered errors; leaves no request rows behind."""
        with self.write() as conn:
            status = conn.execute(
                select(batches.c.status).where(
                    batches.c.id == batch_id, batches.c.claim_token == token
                )
            ).scalar()
            if status is None:
                return
            conn.execute(delete(requests).where(requests.c.batch_id == batch_id))
            target = (
                BatchStatus.FAILED if status == BatchStatus.VALIDATING else BatchStatus.CANCELLED
            )
            stamp = transition(status, target)
            conn.execute(
                update(batches)
                .where(batches.c.id == batch_id)
                .values(
                    status=target.value,
                    errors=orjson.dumps({"object": "list", "data": errors}).decode(),
                    claim_token=None,
                    claim_expires_at=None,
                    **{stamp: now},
                )
            )

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
        final_sql = self._q(
            "UPDATE requests SET state = ?, status_code = ?, response = ?, request_id = ?, "
            "error_code = ?, error_message = ?, input_tokens = ?, output_tokens = ?, "
            "cached_tokens = ?, reasoning_tokens = ?, finished_at = ?, lease_token = NULL, "
            "lease_owner = NULL, lease_expires_at = NULL, "
            "cost_ticks = CAST(ROUND(? * price_in + ? * price_out) AS BIGINT) "
            "WHERE batch_id = ? AND line = ? AND lease_token = ? AND state = 'leased'"
        )
        retry_sql = self._q(
            "UPDATE requests SET state = 'queued', next_attempt_at = ?, status_code = ?, "
            "error_code = ?, error_message = ?, lease_token = NULL, lease_owner = NULL, "
            "lease_expires_at = NULL "
            "WHERE batch_id = ? AND line = ? AND lease_token = ? AND state = 'leased'"
        )
        retries = [r for r in results if r.state == RowState.QUEUED]
        finals = [r for r in results if r.state != RowState.QUEUED]
        retry_params = [
            (r.next_attempt_at, r.status_code, r.error_code, r.error_message,
             r.batch_id, r.line, r.lease_token)
            for r in retries
        ]  # fmt: skip
        final_params = [
            (r.state, r.status_code, r.response, r.request_id, r.error_code, r.error_message,
             r.input_tokens, r.output_tokens, r.cached_tokens, r.reasoning_tokens, now,
             r.input_tokens, r.output_tokens, r.batch_id, r.line, r.lease_token)
            for r in finals
        ]  # fmt: skip
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0, 0, 0])
        with self.write() as conn:
            applied = sum(x is not None for x in self._each(conn, retry_sql, retry_params))
            costs = self._each(conn, final_sql, final_params, returning="1, cost_ticks")
            for r, got in zip(finals, costs, strict=True):
                if got is not None:
                    applied += 1
                    s = sums[r.batch_id]
                    s[0 if r.state == RowState.SUCCEEDED else 1] += 1
                    s[2] += r.input_tokens
                    s[3] += r.output_tokens
                    s[4] += r.cached_tokens
                    s[5] += r.reasoning_tokens
                    if got[1] is not None:
                        s[6] += got[1]
                    elif r.input_tokens or r.output_tokens:
                        s[7] += 1
            self._bump_counters(conn, sums)
            self._add_tenant_spend(conn, {bid: s[6] for bid, s in sums.items()}, now)
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
        sql = self._q(
            "UPDATE batches SET completed = completed + ?, failed = failed + ?, "
            "input_tokens = input_tokens + ?, output_tokens = output_tokens + ?, "
            "cached_tokens = cached_tokens + ?, reasoning_tokens = reasoning_tokens + ?, "
            "cost_ticks = cost_ticks + ?, unpriced = unpriced + ? "
            "WHERE id = ?"
        )
        if sums:
            conn.exec_driver_sql(sql, [(*v, k) for k, v in sorted(sums.items())])

    # -- cancel and expiry act on queued rows ------------------------------------------------

    def batches_to_sweep(self, now: float) -> list[tuple[str, str, str]]:
        """(id, code, message) of batches whose queued rows must end without being sent:
        cancelled, past expiry, or at their budget or their tenant's."""
        with self.read() as conn:
            rows = conn.execute(
                select(batches.c.id, batches.c.status, batches.c.expires_at).where(
                    batches.c.status.in_(
                        [BatchStatus.CANCELLING.value, BatchStatus.IN_PROGRESS.value]
                    )
                )
            ).all()
        out = []
        for bid, status, expires_at in rows:
            if status == BatchStatus.CANCELLING:
                out.append((str(bid), "batch_cancelled", _NOT_SENT["batch_cancelled"][1]))
            elif expires_at <= now:
                out.append((str(bid), "batch_expired", _NOT_SENT["batch_expired"][1]))
        ending = {bid for bid, _, _ in out}
        return out + [s for s in self.budget_sweeps(now) if s[0] not in ending]

    def end_queued_rows(
        self, batch_id: str, code: str, now: float, message: str | None = None
    ) -> int:
        """Queued rows of a batch end without being sent, with ``code`` (``batch_cancelled``,
        ``batch_expired`` or ``budget_exceeded``) and ``message`` (default: the code's)."""
        state, default = _NOT_SENT[code]
        with self.write() as conn:
            n = conn.exec_driver_sql(
                self._q(
                    "UPDATE requests SET state = ?, error_code = ?, error_message = ?, "
                    "finished_at = ? WHERE batch_id = ? AND state = 'queued'"
                ),
                (state.value, code, message or default, now, batch_id),
            ).rowcount
            if n:
                self._bump_counters(conn, {batch_id: [0, n, 0, 0, 0, 0, 0, 0]})
                column = _NOT_SENT_COUNTER.get(state)
                if column is not None:
                    conn.exec_driver_sql(
                        self._q(f"UPDATE batches SET {column} = {column} + ? WHERE id = ?"),
                        (n, batch_id),
                    )
        return int(n)

    # -- finalization -----------------------------------------------------------------------

    def set_status(self, batch_id: str, token: str, target: str, now: int) -> bool:
        """Move a claimed batch to ``target`` through the transition table."""
        with self.write() as conn:
            status = conn.execute(
                select(batches.c.status).where(
                    batches.c.id == batch_id, batches.c.claim_token == token
                )
            ).scalar()
            if status is None:
                return False
            if status == target:
                return True
            stamp = transition(status, target)
            conn.execute(
                update(batches)
                .where(batches.c.id == batch_id)
                .values(status=target, **{stamp: now})
            )
        return True

    def iter_finished_rows(self, batch_id: str, *, chunk: int = 2000) -> Iterator[tuple[Any, ...]]:
        """Every row of a batch in input order, a chunk at a time (bounded memory):
        (line, custom_id, state, status_code, response, request_id, error_code, error_message)."""
        after = 0
        while True:
            rows = self.rows_after(batch_id, after, chunk)
            if not rows:
                return
            yield from rows
            after = rows[-1][0]

    def rows_after(
        self, batch_id: str, after: int, limit: int, *, finished_only: bool = False
    ) -> list[tuple[Any, ...]]:
        """Up to ``limit`` rows with ``line > after`` in input order, shaped as
        ``iter_finished_rows`` yields them; ``finished_only`` skips rows still open (the
        partial results of a running batch)."""
        still_open = ",".join(f"'{s.value}'" for s in OPEN_ROWS)
        where = f" AND state NOT IN ({still_open})" if finished_only else ""
        sql = self._q(
            "SELECT line, custom_id, state, status_code, response, request_id, error_code, "
            f"error_message FROM requests WHERE batch_id = ? AND line > ?{where} "
            "ORDER BY line LIMIT ?"
        )
        with self.read() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql, (batch_id, after, limit)).all()]

    def finish_batch(
        self,
        batch_id: str,
        token: str,
        *,
        target: str,
        new_files: Sequence[Row],
        output_file_id: str | None,
        error_file_id: str | None,
        now: int,
    ) -> bool:
        """End a claimed batch: its output/error file rows and terminal status in one step."""
        with self.write() as conn:
            status = conn.execute(
                select(batches.c.status).where(
                    batches.c.id == batch_id, batches.c.claim_token == token
                )
            ).scalar()
            if status is None or status in TERMINAL:
                return False
            if status == BatchStatus.CANCELLING:
                target = BatchStatus.CANCELLED.value
            stamp = transition(status, target)
            for f in new_files:
                conn.execute(insert(files).values(**f))
            conn.execute(
                update(batches)
                .where(batches.c.id == batch_id)
                .values(
                    status=target,
                    output_file_id=output_file_id,
                    error_file_id=error_file_id,
                    claim_token=None,
                    claim_expires_at=None,
                    **{stamp: now},
                )
            )
        return True

    # -- request rows one at a time (a job of the jobs dialect is one row) -------------------

    def _requests_of(self, tenant: str | None, dialect: str) -> Select[Any]:
        q = (
            select(*_REQUEST_ITEM, batches.c.created_at)
            .select_from(requests.join(batches, batches.c.id == requests.c.batch_id))
            .where(batches.c.dialect == dialect)
        )
        return q if tenant is None else q.where(batches.c.tenant == tenant)

    def get_request(
        self, batch_id: str, line: int, *, dialect: str, tenant: str | None = None
    ) -> Row | None:
        """One request row of a batch of ``dialect``, with its batch's ``created_at``."""
        q = self._requests_of(tenant, dialect).where(
            requests.c.batch_id == batch_id, requests.c.line == line
        )
        with self.read() as conn:
            r = conn.execute(q).mappings().first()
        return dict(r) if r else None

    def list_requests(
        self, tenant: str | None, *, dialect: str, before: tuple[str, int] | None, limit: int
    ) -> tuple[list[Row], bool]:
        """Request rows of every batch of ``dialect``, newest first (batch, then line, from
        the last); ``before`` (batch id, line): the page after that row."""
        q = self._requests_of(tenant, dialect)
        if before is not None:
            q = q.where(tuple_(requests.c.batch_id, requests.c.line) < tuple_(*before))
        q = q.order_by(requests.c.batch_id.desc(), requests.c.line.desc()).limit(limit + 1)
        with self.read() as conn:
            rows = [dict(r) for r in conn.execute(q).mappings()]
        return rows[:limit], len(rows) > limit

    # -- checks used by tests and /health ----------------------------------------------------

    def count_rows(self, batch_id: str) -> dict[str, int]:
        with self.read() as conn:
            rows = conn.exec_driver_sql(
                self._q("SELECT state, COUNT(*) FROM requests WHERE batch_id = ? GROUP BY state"),
                (batch_id,),
            ).all()
        return {str(r[0]): int(r[1]) for r in rows}

    def active_batch_count(self) -> int:
        with self.read() as conn:
            rows = conn.execute(
                select(batches.c.id).where(batches.c.status.in_([s.value for s in ACTIVE]))
            ).all()
        return len(rows)


def open_store(url: str, *, threads: int = 8, migrate: bool = True) -> Store:
    """Open the store at ``url`` (SQLite path/URL or postgresql://) and migrate it."""
    store = Store(url, threads=threads)
    if migrate:
        store.migrate()
    return store


__all__ = ["Store", "normalize_url", "open_store"]
