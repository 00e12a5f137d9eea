"""Building the pieces a command needs from its flags: config, store, blobs, worker options."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.request import getproxies_environment

import typer

from batchgate.config import Config, Limits, flag_upstreams, with_environment
from batchgate.configfile import load_config
from batchgate.engine.retry import RetryPolicy
from batchgate.engine.worker import WorkerOptions
from batchgate.errors import BatchgateError, ConfigError
from batchgate.storage.blobs import BlobStore
from batchgate.storage.sql import SqlStore, open_store


@dataclass
class StoreOptions:
    data_dir: Path
    database_url: str | None


@dataclass
class UpstreamOptions:
    upstream: list[str] | None  # repeated --upstream: URL or NAME=URL
    config: Path | None
    concurrency: int
    rpm: int
    tpm: int
    timeout: float
    api_key_env: str | None
    max_lines: int | None
    max_file_mb: int | None


SQLITE_FILE = "batchgate.db"


def _shown_url(url: str) -> str:
    """A database URL with its password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: opening it will say what is wrong
        return url.split("@")[-1]


_HELD: list[int] = []  # the lock files this process holds, open until it exits
WORKER_LOCK = "worker.lock"


def lock_worker(opts: StoreOptions) -> None:
    """One worker per SQLite data directory: a second ``serve`` or ``worker`` on it would send
    at the full concurrency again (twice the upstream's load) and contend for one file. The
    lock (``flock`` on ``<data-dir>/worker.lock``) is the kernel's, so it goes with the process,
    ``kill -9`` included. PostgreSQL is the way to run several workers; ``serve --no-worker``
    adds API processes without one."""
    if opts.database_url:
        return
    import fcntl

    opts.data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(opts.data_dir / WORKER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise ConfigError(
            f"Another batchgate process (pid {holder}) runs a worker on the SQLite store in "
            f"{opts.data_dir.resolve()}: a second would send at the full concurrency again and "
            "contend for one database file. Run one `serve` or `worker` per data directory "
            "(`serve --no-worker` adds an API process), or share PostgreSQL (--database-url) "
            "between several workers."
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD.append(fd)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else starts (a worker, its upstream
    check): a port in use is said at once, with the fix."""
    try:
        family = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host.strip("[]"), port), family=family, backlog=2048)
    except OSError as exc:
        why = (exc.strerror or str(exc)).lower()
        raise ConfigError(
            f"Cannot listen on {host}:{port}: {why}; is another server running there? Pick "
            "another port with --port."
        ) from None


def open_backends(opts: StoreOptions) -> tuple[SqlStore, BlobStore]:
    """The row store (SQLite under ``data_dir`` unless a database URL is given) and blobs."""
    opts.data_dir.mkdir(parents=True, exist_ok=True)
    url = opts.database_url or f"sqlite:///{(opts.data_dir / SQLITE_FILE).resolve()}"
    return open_store(url), BlobStore(opts.data_dir / "blobs")


@contextmanager
def reported() -> Iterator[None]:
    """A BatchgateError inside becomes ``error: <message>`` on stderr and exit status 1."""
    try:
        yield
    except BatchgateError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


@contextmanager
def operator_store(
    data_dir: Path, database_url: str | None, *, create: bool = False
) -> Iterator[SqlStore]:
    """The server's store for an operator command (``keys``, ``budgets``, ``usage``), closed
    after; errors reported as ``reported`` does. It says on stderr which store it acts on, and
    refuses a SQLite data directory that holds no store unless ``create``: run in the wrong
    directory, a command would otherwise make an empty store there and report success (a key
    the running server never sees)."""
    with reported():
        db = data_dir / SQLITE_FILE
        if database_url is None and not db.is_file() and not create:
            raise ConfigError(
                f"No batchgate store in {data_dir.resolve()} (no {SQLITE_FILE} there). Point "
                "--data-dir (or BATCHGATE_DATA_DIR) at the directory `batchgate serve` uses, "
                "or --database-url (BATCHGATE_DATABASE_URL) at its database; --create makes a "
                "new store here."
            )
        where = _shown_url(database_url) if database_url else str(db.resolve())
        typer.echo(f"store: {where}", err=True)
        store, _ = open_backends(StoreOptions(data_dir, database_url))
        try:
            yield store
        finally:
            store.close()


def from_environment(config: Config) -> Config:
    """The edge: the one place the upstreams' keys (their ``api_key_env``) and proxies
    (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) are read from the environment."""
    return with_environment(config, os.environ, getproxies_environment())


def build_config(opts: UpstreamOptions) -> Config:
    """The config the flags or the file describe, the environment's part filled in."""
    if opts.config and opts.upstream:
        raise ConfigError("Give either --upstream or --config FILE, not both.")
    if opts.config:
        config = load_config(opts.config)
    elif opts.upstream:
        config = flag_upstreams(
            opts.upstream, concurrency=opts.concurrency, rpm=opts.rpm, tpm=opts.tpm,
            timeout=opts.timeout, api_key_env=opts.api_key_env,
        )  # fmt: skip
    else:
        raise ConfigError(
            "No upstream: pass --upstream http://HOST:PORT/v1 (one OpenAI-compatible server), "
            "--upstream NAME=URL (repeatable: NAME:model routes to NAME) "
            "or --config batchgate.toml (providers with prices)."
        )
    limits = config.limits
    if opts.max_lines:
        limits = dataclasses.replace(limits, max_lines=opts.max_lines)
    if opts.max_file_mb:
        limits = dataclasses.replace(limits, max_file_bytes=opts.max_file_mb * 1024 * 1024)
    if limits != config.limits:
        config = dataclasses.replace(config, limits=limits)
    return from_environment(config)


# A local run reads its file streaming and holds no one else's work: the server's defaults
# (50,000 lines, 200 MB, which follow the hosted batch APIs) are no reason to refuse a file.
# Explicit --max-lines / --max-file-mb, or a config file's [limits], still apply.
LOCAL_MAX_LINES = 2**31 - 1
LOCAL_MAX_FILE_BYTES = 2**62


def local_limits(config: Config) -> Config:
    limits, server = config.limits, Limits()
    if limits.max_lines == server.max_lines:
        limits = dataclasses.replace(limits, max_lines=LOCAL_MAX_LINES)
    if limits.max_file_bytes == server.max_file_bytes:
        limits = dataclasses.replace(limits, max_file_bytes=LOCAL_MAX_FILE_BYTES)
    return dataclasses.replace(config, limits=limits)


def warn_upstreams(config: Config) -> None:
    """One ``warning:`` line on stderr per upstream that does not answer GET /models."""
    from batchgate.cli.checks import startup_problems

    for _, line in startup_problems(config.upstreams):
        typer.echo(f"warning: {line}", err=True)


def worker_options(
    *, lease_ttl: float, max_attempts: int, retry_base_delay: float, poll_interval: float
) -> WorkerOptions:
    retry = RetryPolicy(max_attempts=max_attempts, base_delay=retry_base_delay)
    return WorkerOptions(lease_ttl=lease_ttl, retry=retry, poll_interval=poll_interval)


def prepare(
    upstreams: UpstreamOptions, stores: StoreOptions, *, lease_ttl: float, max_attempts: int,
    retry_base_delay: float, log_level: str, check: bool = True,
) -> tuple[Config, SqlStore, BlobStore, WorkerOptions]:  # fmt: skip
    """Everything ``serve`` and ``worker`` share: logging, config, the upstreams' start-up
    check (``check``: a warning per problem, and on: a server may start before its upstream),
    backends, worker options."""
    setup_logging(log_level)
    config = build_config(upstreams)
    if check:
        warn_upstreams(config)
    store, blobs = open_backends(stores)
    opts = worker_options(
        lease_ttl=lease_ttl, max_attempts=max_attempts, retry_base_delay=retry_base_delay,
        poll_interval=0.25,
    )  # fmt: skip
    return config, store, blobs, opts


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


__all__ = [
    "Limits", "StoreOptions", "UpstreamOptions", "build_config", "from_environment",
    "open_backends",
]  # fmt: skip
