"""``batchgate usage``: requests, tokens and cost per tenant (and model) over a time range, read
from a server's store (the same ``--data-dir`` / ``--database-url`` as ``serve``), as a table or
as the JSON of ``GET /v1/usage``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from batchgate.cli.common import DatabaseUrl, DataDir, print_table
from batchgate.cli.runtime import operator_store, reported
from batchgate.domain.usage import time_range, usage_object

_WHEN = "a date (2026-12-01), an RFC 3339 time (2026-12-01T10:00:00Z) or Unix seconds"
_COLUMNS = ["requests", "succeeded", "failed", "input_tokens", "output_tokens"]


def register(app: typer.Typer) -> None:
    """Add ``usage`` to ``app``."""
    app.command("usage")(usage)


def usage(
    since: Annotated[
        str | None,
        typer.Option(
            help=f"Start of the range, included: {_WHEN} (UTC when no "
            "offset); default: a day before --until."
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="End of the range, excluded (as --since); default: now.")
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant's usage (default: every tenant's).")
    ] = None,
    by_model: Annotated[
        bool, typer.Option("--by-model", help="One line per tenant and model.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON object of GET /v1/usage.")
    ] = False,
    data_dir: DataDir = Path("./data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Show requests, tokens and cost per tenant over a time range (default: the last 24 h)."""
    with reported():
        start, end = time_range(since, until, time.time(), names=("--since", "--until"))
    with operator_store(data_dir, database_url) as store:
        groups = store.usage(tenant, start=start, end=end, by_model=by_model)
    doc = usage_object(start, end, groups, by_model=by_model)
    if as_json:
        typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    typer.echo(f"Usage from {_when(start)} to {_when(end)} (end excluded):", err=True)
    keys = ["tenant", "model"] if by_model else ["tenant"]
    header = [*keys, *_COLUMNS, "cost_usd", "priced"]
    print_table(header, [_line(e, keys) for e in doc["data"]])


def _line(entry: dict[str, Any], keys: list[str]) -> list[str]:
    cost = entry["cost"]
    shown = [str(entry[k]) if entry[k] is not None else "-" for k in keys]
    counts = [str(entry[c]) for c in _COLUMNS]
    return [*shown, *counts, cost["usd"], "yes" if cost["priced"] else "no"]


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
