"""Option groups: flags several commands share, declared once as a dataclass whose fields are
typer options. A command takes the group as one parameter (``upstreams: UpstreamFlags``);
``with_groups`` shows typer the group's fields in its place and hands the command the group
built from them. Nothing heavy is imported here, so ``--help`` stays quick."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from batchgate.cli.common import (
    Concurrency,
    ConfigFile,
    DatabaseUrl,
    DataDir,
    KeyEnv,
    LeaseTtl,
    LogLevel,
    MaxAttempts,
    MaxFileMb,
    MaxLines,
    NoStartCheck,
    RetryBase,
    Rpm,
    Timeout,
    Tpm,
    Upstream,
)

if TYPE_CHECKING:
    from batchgate.cli.runtime import StoreOptions, UpstreamOptions
    from batchgate.config import Config
    from batchgate.engine.worker import WorkerOptions
    from batchgate.storage.blobs import BlobStore
    from batchgate.storage.sql import SqlStore

KW = inspect.Parameter.KEYWORD_ONLY  # typer passes every flag by name


@dataclass(frozen=True)
class UpstreamFlags:
    """The flags of every command that sends to an upstream: run, serve, worker."""

    upstream: Upstream = None
    config: ConfigFile = None
    concurrency: Concurrency = 64
    rpm: Rpm = 0
    tpm: Tpm = 0
    upstream_timeout: Timeout = 600.0
    api_key_env: KeyEnv = "BATCHGATE_UPSTREAM_API_KEY"
    max_lines: MaxLines = None
    max_file_mb: MaxFileMb = None
    no_check: NoStartCheck = False

    def options(self) -> UpstreamOptions:
        from batchgate.cli.runtime import UpstreamOptions

        return UpstreamOptions(
            self.upstream, self.config, self.concurrency, self.rpm, self.tpm,
            self.upstream_timeout, self.api_key_env, self.max_lines, self.max_file_mb,
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class EngineFlags:
    """The flags of the commands that run a worker on a store: serve and worker."""

    data_dir: DataDir = Path("./data")
    database_url: DatabaseUrl = None
    upstreams: UpstreamFlags
    lease_ttl: LeaseTtl = 30.0
    max_attempts: MaxAttempts = 5
    retry_base_delay: RetryBase = 1.0
    log_level: LogLevel = "info"

    def stores(self) -> StoreOptions:
        from batchgate.cli import runtime as rt

        return rt.StoreOptions(self.data_dir, self.database_url)

    def prepare(self) -> tuple[Config, SqlStore, BlobStore, WorkerOptions]:
        """Logging, config, store, blobs and worker options (BatchgateError if refused)."""
        from batchgate.cli import runtime as rt

        return rt.prepare(
            self.upstreams.options(), self.stores(),
            lease_ttl=self.lease_ttl, max_attempts=self.max_attempts,
            retry_base_delay=self.retry_base_delay, log_level=self.log_level,
            check=not self.upstreams.no_check,
        )  # fmt: skip


def with_groups(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` as typer should see it: each parameter typed by an option group is
    spread into the group's flags (nested groups too), in its place."""
    sig = inspect.signature(command, eval_str=True)
    params = [p for param in sig.parameters.values() for p in _spread(param)]

    @functools.wraps(command)
    def run(**flags: Any) -> None:
        command(**{p: _gather(sig.parameters[p].annotation, p, flags) for p in sig.parameters})

    run.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}  # what typer reads
    return run


def _is_group(annotation: Any) -> bool:
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def _spread(param: inspect.Parameter) -> Iterator[inspect.Parameter]:
    if not _is_group(param.annotation):
        yield param.replace(kind=KW)
        return
    hints = get_type_hints(param.annotation, include_extras=True)
    for f in dataclasses.fields(param.annotation):
        default = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        yield from _spread(inspect.Parameter(f.name, KW, default=default, annotation=hints[f.name]))


def _gather(annotation: Any, name: str, flags: dict[str, Any]) -> Any:
    """The value of parameter ``name``: the flag itself, or its group built from the flags."""
    if not _is_group(annotation):
        return flags[name]
    hints = get_type_hints(annotation)
    fields = dataclasses.fields(annotation)
    return annotation(**{f.name: _gather(hints[f.name], f.name, flags) for f in fields})
