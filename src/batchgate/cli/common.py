"""What several commands share: option types, the first line of a JSONL file, output files that
appear only once complete, tables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

Upstream = Annotated[
    list[str] | None,
    typer.Option("--upstream", help="An OpenAI-compatible upstream: a base URL, e.g. "
                 "http://127.0.0.1:8000/v1 (every model routes to it), or NAME=URL, "
                 "repeatable (NAME:model routes to NAME; the first is the default)."),
]  # fmt: skip
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="TOML file with several upstreams and routes.")
]
Concurrency = Annotated[int, typer.Option(help="Max requests in flight to the upstream.")]
Rpm = Annotated[int, typer.Option(help="Requests per minute to the upstream (0 = no limit).")]
Tpm = Annotated[int, typer.Option(help="Tokens per minute to the upstream (0 = no limit).")]
Timeout = Annotated[float, typer.Option("--upstream-timeout", help="Seconds per upstream call.")]
KeyEnv = Annotated[
    str, typer.Option("--api-key-env", help="Env var holding the upstream's API key.")
]
NoStartCheck = Annotated[
    bool,
    typer.Option("--no-check", help="Skip the start-up check that each upstream answers GET "
                 "/models (run refuses to start when one is unreachable or answers 401, 403 or "
                 "404; serve and worker only warn)."),
]  # fmt: skip
MaxAttempts = Annotated[int, typer.Option(help="Sends per request before it fails.")]
RetryBase = Annotated[float, typer.Option(help="First retry back-off in seconds (doubles).")]
MaxLines = Annotated[int | None, typer.Option(help="Max lines per batch file (default 50000).")]
MaxFileMb = Annotated[int | None, typer.Option(help="Max batch file size in MB (default 200).")]
LogLevel = Annotated[str, typer.Option(help="debug, info, warning or error.")]
LeaseTtl = Annotated[
    float, typer.Option(help="Seconds before a dead worker's rows are taken over.")
]
DataDir = Annotated[
    Path, typer.Option("--data-dir", help="State directory: SQLite database and blobs.")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", envvar="BATCHGATE_DATABASE_URL",
                 help="postgresql://… to share state between processes (default: SQLite)."),
]  # fmt: skip


def first_line(path: Path) -> bytes:
    """The first line of ``path`` that is not blank (a UTF-8 BOM dropped); b"" if none."""
    with open(path, "rb") as fh:
        while raw := fh.readline(64 << 20):
            if line := raw.removeprefix(b"\xef\xbb\xbf").strip():
                return line
    return b""


def first_object(path: Path) -> dict[str, Any]:
    """The first line of a JSONL file as an object; {} when it is not one (validation then
    reports the located error, as the server would)."""
    try:
        doc = orjson.loads(first_line(path))
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """Write ``path`` through a hidden temporary file renamed into place once complete: a
    killed or failed command never leaves a partial file under the final name."""
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """A table on a terminal; tab-separated lines (nothing cut short) when piped."""
    console = Console()
    if not console.is_terminal:
        for row in [header, *rows]:
            typer.echo("\t".join(row))
        return
    table = Table(*header, box=None)
    for row in rows:
        table.add_row(*row)
    console.print(table)
