"""The SQL store: every use-case's reads and writes (the ``Store`` protocol of ``base.py``), on
SQLite (embedded) or PostgreSQL (scale-out), chosen by URL.

All methods are synchronous and short; async callers run them in a thread (``SqlStore.call``).
Hot-path statements (lease, record, ingest's insert) are plain SQL on the driver; the rest is
SQLAlchemy Core or ``text()`` with named parameters. Every write that acts on leased rows is
conditional on the lease token, so a worker whose lease was taken over cannot overwrite the new
owner's result.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from batchgate.errors import StoreUnavailable
from batchgate.storage import migrate
from batchgate.storage.batches import BatchRecords
from batchgate.storage.budgets import BudgetRecords
from batchgate.storage.files import FileRecords
from batchgate.storage.health import HealthRecords
from batchgate.storage.keys import KeyRecords
from batchgate.storage.leases import LeaseRecords
from batchgate.storage.requeue import RequeueRecords
from batchgate.storage.rows import RowRecords
from batchgate.storage.usage import UsageRecords

T = TypeVar("T")


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


class SqlStore(
    BatchRecords, RowRecords, RequeueRecords, FileRecords, LeaseRecords, BudgetRecords,
    KeyRecords, UsageRecords, HealthRecords,
):  # fmt: skip
    """Batches (``batches.py``), their rows (``rows.py``) and the retry of failed ones
    (``requeue.py``), files (``files.py``), leasing (``leases.py``), budgets (``budgets.py``),
    API keys (``keys.py``), usage (``usage.py``) and upstream health (``health.py``) in one SQL
    database; this class holds the engines and the thread pool they run on."""

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
        """Driver SQL for the hot statements: SQLite's ``?`` marks as psycopg's ``%s``."""
        return sql.replace("?", "%s") if self.is_postgres else sql

    def _skip_locked(self) -> str:
        return " FOR UPDATE SKIP LOCKED" if self.is_postgres else ""

    def ping(self) -> None:
        with self.read() as conn:
            conn.exec_driver_sql("SELECT 1")


def open_store(url: str, *, threads: int = 8, migrate: bool = True) -> SqlStore:
    """Open the store at ``url`` (SQLite path/URL or postgresql://) and migrate it."""
    store = SqlStore(url, threads=threads)
    if migrate:
        store.migrate()
    return store


__all__ = ["SqlStore", "normalize_url", "open_store"]
