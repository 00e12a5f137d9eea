"""What several commands share: exit codes, option types, the first line of a JSONL file, output
files that appear only once complete, tables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import IO, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table


class Exit(IntEnum):
    """The exit codes of the commands that see a batch end (``run``, ``submit --wait``,
    ``wait``), in one place so that scripts can tell the outcomes apart; the README's "Exit
    codes" table says the same."""

    OK = 0  # the batch ended and every line succeeded
    ERROR = 1  # the server could not be reached or refused the key; ``wait --timeout`` ran out
    USAGE = 2  # bad arguments, config or state (typer's usage errors too), refused to start
    LINES_FAILED = 3  # the batch completed, but some lines failed
    BATCH_ENDED = 4  # the batch itself ended failed (an invalid input), expired or cancelled
    INTERRUPTED = 130  # Ctrl-C / SIGTERM (``run``: the same command resumes)


BATCH_ENDED_BADLY = frozenset({"failed", "expired", "cancelled"})


def outcome(status: str, failed_lines: int, *, allow_failures: bool = False) -> Exit:
    """The exit code of a batch that ended in ``status`` with ``failed_lines`` failed lines.
    ``allow_failures`` (``--allow-failures``) makes a completed batch with failed lines a 0;
    a batch that itself failed, expired or was cancelled stays a 4: its results are not all
    there, which is what a script must not miss."""
    if status in BATCH_ENDED_BADLY:
        return Exit.BATCH_ENDED
    if failed_lines and not allow_failures:
        return Exit.LINES_FAILED
    return Exit.OK


AllowFailures = Annotated[
    bool,
    typer.Option("--allow-failures", help="Exit 0, not 3, when the batch completed with some "
                 "lines failed (a batch that failed, expired or was cancelled still exits 4)."),
]  # fmt: skip
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
MaxLines = Annotated[
    int | None,
    typer.Option(help="Max lines per batch file (default 50000; `run`: no limit)."),
]
MaxFileMb = Annotated[
    int | None, typer.Option(help="Max batch file size in MB (default 200; `run`: no limit).")
]
LogLevel = Annotated[str, typer.Option(help="debug, info, warning or error.")]
LeaseTtl = Annotated[
    float, typer.Option(help="Seconds before a dead worker's rows are taken over.")
]
DataDir = Annotated[
    Path,
    typer.Option("--data-dir", envvar="BATCHGATE_DATA_DIR",
                 help="State directory: SQLite database and blobs."),
]  # fmt: skip
CreateStore = Annotated[
    bool,
    typer.Option("--create", help="Make a new store if --data-dir holds none (to set keys or "
                 "budgets up before the first `serve`)."),
]  # fmt: skip
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
