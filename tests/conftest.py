"""Shared fixtures: the simulated upstream, SQLite and real PostgreSQL stores, live servers,
real processes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from batchgate.sim import SimConfig, SimHandle, start_in_thread
from tests.helpers.procs import Procs
from tests.helpers.servers import ServerHandle, run_server

PG_ADMIN = os.environ.get("BATCHGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:  # any failure means "no Postgres here"
        return str(exc)


@pytest.fixture(scope="session")
def pg_available() -> None:
    problem = _pg_reachable()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL at {PG_ADMIN} is unreachable under CI: {problem}")
    pytest.skip(
        f"PostgreSQL unreachable ({problem}); start one on 127.0.0.1:5432 with trust auth "
        "or set BATCHGATE_TEST_PG=postgresql://… to run the Postgres tests."
    )


@pytest.fixture
def pg_url(pg_available: None) -> Iterator[str]:
    """A fresh schema in the test database; the URL selects it through search_path."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_ADMIN else "?"
    yield f"{PG_ADMIN}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'batchgate.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every backend in turn: the same test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'batchgate.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    """Real ``batchgate`` processes (e2e and CLI tests): spawned through this, their groups are
    SIGKILLed and their log tails printed (shown by pytest for a failing test) after the test."""
    p = Procs(tmp_path / "logs")
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="session")
def sim_session() -> Iterator[SimHandle]:
    handle = start_in_thread(SimConfig())
    yield handle
    handle.stop()


@pytest.fixture
def sim(sim_session: SimHandle) -> Iterator[SimHandle]:
    """The simulated upstream, fault-free and with zeroed counters for each test."""
    sim_session.configure(**SimConfig().to_dict())
    sim_session.reset()
    yield sim_session
    sim_session.configure(**SimConfig().to_dict())


@pytest.fixture
def make_server(tmp_path: Path, sim: SimHandle) -> Iterator[Callable[..., ServerHandle]]:
    """Start a live server (call it with a database URL and options); stopped after the test."""
    stack: list[AbstractContextManager[ServerHandle]] = []

    def start(database_url: str | None = None, **kwargs: Any) -> ServerHandle:
        kwargs.setdefault("upstream_url", sim.url)
        url = database_url or f"sqlite:///{tmp_path / f'db{len(stack)}.sqlite'}"
        data_dir = kwargs.pop("data_dir", tmp_path / f"data{len(stack)}")
        cm = run_server(url, data_dir, **kwargs)
        stack.append(cm)
        return cm.__enter__()

    yield start
    while stack:
        stack.pop().__exit__(None, None, None)


@pytest.fixture
def server(make_server: Callable[..., ServerHandle]) -> ServerHandle:
    """A live server on SQLite with the simulator as its one upstream."""
    return make_server()
