"""Client commands against a running server, on the SDK: submit, status, wait, results, cancel,
retry, ls and ``files …``. An id that starts with ``msgbatch_`` is an Anthropic Message Batch; any
other is an OpenAI batch. Every failure is one line on stderr that names the next step."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any

import orjson
import typer
from rich.console import Console

from batchgate.cli.common import (
    AllowFailures,
    Exit,
    atomic_file,
    first_object,
    outcome,
    print_table,
)
from batchgate.cli.progress import ProgressView, Snapshot, unavailable_notes
from batchgate.client import Client
from batchgate.client.errors import (
    APIConnectionError,
    AuthenticationError,
    BatchgateClientError,
    NotFoundError,
    PermissionDeniedError,
    ResultDecodeError,
    WaitTimeout,
)
from batchgate.client.types import Batch, MessageBatch

AnyBatch = Batch | MessageBatch

Url = Annotated[
    str,
    typer.Option("--url", envvar="BATCHGATE_URL", help="The server's address.",
                 show_default=True),
]  # fmt: skip
Key = Annotated[
    str | None,
    typer.Option("--api-key", envvar="BATCHGATE_API_KEY", help="The key for the server.",
                 show_default=False),
]  # fmt: skip
BatchId = Annotated[str, typer.Argument(help="A batch id (batch_… or msgbatch_…).")]
Poll = Annotated[float, typer.Option("--poll", help="Seconds between status checks.")]
WaitFlag = Annotated[
    bool, typer.Option("--wait", help="Show progress until it ends; exit as `wait` does.")
]
DEFAULT_URL = "http://127.0.0.1:8080"

files_app = typer.Typer(help="Files on the server: ls, upload, get, content, rm.",
                        no_args_is_help=True)  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add the client commands to ``app``."""
    for fn in (submit, status, wait, results, cancel, retry, ls):
        app.command(fn.__name__)(fn)
    app.add_typer(files_app, name="files")


# -- errors: one line that names the next step ---------------------------------------------------


@contextlib.contextmanager
def _session(url: str, api_key: str | None) -> Iterator[Client]:
    if not url.startswith(("http://", "https://")):
        typer.echo(
            f"error: --url {url!r} needs a scheme: http://{url.split('://')[-1]} (or https://).",
            err=True,
        )
        raise typer.Exit(Exit.USAGE)
    try:
        with Client(base_url=url, api_key=api_key) as client:
            yield client
    except BatchgateClientError as exc:
        typer.echo(f"error: {explain(exc, url)}", err=True)
        raise typer.Exit(Exit.ERROR) from None


def explain(exc: BatchgateClientError, url: str) -> str:
    """The one line a user reads: what went wrong and what to do next."""
    if isinstance(exc, APIConnectionError):  # the SDK's own message says it all again
        return (
            f"cannot reach batchgate at {url} ({exc.reason}); is `batchgate serve` running "
            "there? Point --url or BATCHGATE_URL at it."
        )
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        return (
            f"the server refused the API key ({exc.message}); pass a valid one with --api-key "
            "or BATCHGATE_API_KEY."
        )
    if isinstance(exc, NotFoundError):
        where = "`batchgate files ls`" if "file" in exc.message.lower() else "`batchgate ls`"
        return f"{exc.message} {where} lists what there is."
    if isinstance(exc, WaitTimeout):
        return f"{exc.message}; run `batchgate wait {exc.batch_id}` to keep waiting."
    return exc.message


def _resource(client: Client, batch_id: str) -> Any:
    """The SDK resource a batch id belongs to."""
    return client.messages.batches if batch_id.startswith("msgbatch_") else client.batches


def _snapshot(batch: AnyBatch) -> Snapshot:
    counts = batch.counts
    tokens = 0
    if isinstance(batch, Batch) and batch.usage is not None:
        tokens = batch.usage.input_tokens + batch.usage.output_tokens
    state = batch.status if isinstance(batch, Batch) else batch.processing_status
    return Snapshot(
        counts.total, counts.succeeded, counts.failed, 0, tokens, state or "",
        waiting_for=unavailable_notes(batch.raw.get("upstreams")),
    )  # fmt: skip


def _watch(client: Client, batch_id: str, poll: float, timeout: float | None) -> AnyBatch:
    """Poll until the batch ends, showing progress. Ctrl-C stops the waiting, not the batch:
    exit 130 with the command that waits again."""
    try:
        with ProgressView(batch_id) as view:
            batch: AnyBatch = _resource(client, batch_id).wait_for(
                batch_id, poll_interval=poll, timeout=timeout,
                on_progress=lambda b: view.update(_snapshot(b)),
            )  # fmt: skip
    except KeyboardInterrupt:
        typer.echo(f"\nInterrupted; the batch runs on. Wait again with:\n  batchgate wait "
                   f"{batch_id}", err=True)  # fmt: skip
        raise typer.Exit(Exit.INTERRUPTED) from None
    return batch


def exit_code(batch: AnyBatch, allow_failures: bool = False) -> Exit:
    """The exit code of an ended batch (``common.Exit``). A Message Batch only says "ended":
    one whose cancel was asked counts as cancelled, one with expired requests as expired."""
    if isinstance(batch, MessageBatch):
        rc = batch.request_counts
        status = "completed"
        if batch.cancel_initiated_at is not None:
            status = "cancelled"
        elif rc.expired:
            status = "expired"
        return outcome(status, rc.errored + rc.canceled, allow_failures=allow_failures)
    return outcome(batch.status or "", batch.counts.failed, allow_failures=allow_failures)


# -- commands --------------------------------------------------------------------------------


def submit(
    file: Annotated[
        Path,
        typer.Argument(
            help="A JSONL batch file (OpenAI lines, or Anthropic {custom_id, params} lines).",
            exists=True,
            dir_okay=False,
        ),
    ],
    endpoint: Annotated[
        str | None, typer.Option(help="OpenAI endpoint (default: the first line's url).")
    ] = None,
    window: Annotated[str, typer.Option("--window", help="completion_window.")] = "24h",
    budget_usd: Annotated[
        str | None,
        typer.Option(help="Spend at most this many USD: once reached, the requests not yet "
                     "sent end with budget_exceeded."),
    ] = None,
    wait_: WaitFlag = False,
    poll: Poll = 2.0,
    url: Url = DEFAULT_URL,
    api_key: Key = None,
    allow_failures: AllowFailures = False,
) -> None:  # fmt: skip
    """Upload FILE and create a batch from it; prints the batch id."""
    first = first_object(file)
    with _session(url, api_key) as client:
        batch: AnyBatch
        if "params" in first and "body" not in first:
            batch = client.messages.batches.create(file, budget_usd=budget_usd)
        else:
            target = endpoint or first.get("url") or "/v1/chat/completions"
            batch = client.batches.create(
                file, endpoint=target, completion_window=window, budget_usd=budget_usd
            )
        _made(client, batch, wait_, poll, allow_failures)


def _made(client: Client, batch: AnyBatch, wait_: bool, poll: float, allow_failures: bool) -> None:
    """Print a new batch's id; with ``--wait``, follow it to its end and exit as `wait`."""
    typer.echo(batch.id)
    if wait_:
        _finish(_watch(client, batch.id, poll, None), allow_failures)


def retry(
    batch_id: BatchId,
    error_codes: Annotated[
        str | None,
        typer.Option("--error-codes", help="Only requests that failed with these codes, comma-"
                     "separated (e.g. upstream_unreachable,upstream_error)."),
    ] = None,
    budget_usd: Annotated[
        str | None, typer.Option(help="The new batch's budget (default: the original's).")
    ] = None,
    wait_: WaitFlag = False,
    poll: Poll = 2.0,
    url: Url = DEFAULT_URL,
    api_key: Key = None,
    allow_failures: AllowFailures = False,
) -> None:  # fmt: skip
    """Send again what failed in an ended batch: a new batch of its failed, cancelled and
    expired requests (its original lines, in input order); prints the new batch id."""
    codes = [c.strip() for c in error_codes.split(",") if c.strip()] if error_codes else None
    with _session(url, api_key) as client:
        batch: AnyBatch = _resource(client, batch_id).retry(
            batch_id, error_codes=codes, budget_usd=budget_usd
        )
        _made(client, batch, wait_, poll, allow_failures)


def _finish(batch: AnyBatch, allow_failures: bool = False) -> None:
    """Describe the ended batch on stderr and exit with its code (0 stays a normal return)."""
    _describe(batch, Console(stderr=True))
    code = exit_code(batch, allow_failures)
    if code != Exit.OK:
        raise typer.Exit(code)


def status(
    batch_id: BatchId,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw batch object.")] = False,
    url: Url = DEFAULT_URL,
    api_key: Key = None,
) -> None:
    """Show one batch: status, counts, tokens and its files."""
    with _session(url, api_key) as client:
        batch: AnyBatch = _resource(client, batch_id).get(batch_id)
    if as_json:
        typer.echo(orjson.dumps(batch.raw, option=orjson.OPT_INDENT_2).decode())
    else:
        _describe(batch, Console())


def _describe(batch: AnyBatch, console: Console) -> None:
    snap = _snapshot(batch)
    console.print(f"[bold]{batch.id}[/]  {snap.status}")
    console.print(f"  requests  {snap.done}/{snap.total} done, {snap.succeeded} succeeded, "
                  f"{snap.failed} failed")  # fmt: skip
    if isinstance(batch, Batch) and batch.usage is not None:
        console.print(f"  tokens    {batch.usage.input_tokens} in, "
                      f"{batch.usage.output_tokens} out")  # fmt: skip
    _describe_spend(batch.raw, console)
    for note in snap.waiting_for:
        console.print(f"  upstream  {note}", markup=False, style="yellow")
    if isinstance(batch, Batch):
        for label, fid in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
            if fid:
                console.print(f"  {label:<9} {fid}")
        for err in batch.errors[:10]:  # each message names its line already ("Line 6: …")
            console.print(f"  error     {err.message}", markup=False, style="red")
    if isinstance(batch, Batch) and batch.status == "failed":
        return  # its input was invalid: no results to fetch, nothing to retry
    console.print(f"  results   batchgate results {batch.id} -o results.jsonl", markup=False)
    if batch.ended and snap.failed:
        console.print(f"  retry     batchgate retry {batch.id}", markup=False)


def _describe_spend(raw: dict[str, Any], console: Console) -> None:
    """The batchgate extension fields ``cost`` and ``budget``, when the server sent them."""
    cost, budget = raw.get("cost"), raw.get("budget")
    if isinstance(cost, dict):
        known = f"${cost.get('usd')}"
        if not cost.get("priced", True):
            known = (
                "not priced (its models have no price)" if not cost.get("ticks")
                else f"at least {known} (some requests were on a model with no price)"
            )  # fmt: skip
        console.print(f"  cost      {known}", markup=False)
    if isinstance(budget, dict):
        reached = " (reached: requests not yet sent end with budget_exceeded)"
        console.print(
            f"  budget    ${budget.get('usd')}{reached if budget.get('reached') else ''}",
            markup=False,
        )


def wait(
    batch_id: BatchId,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    poll: Poll = 2.0,
    url: Url = DEFAULT_URL,
    api_key: Key = None,
    allow_failures: AllowFailures = False,
) -> None:
    """Wait for a batch to end, with progress; the exit code says how it ended.

    0: every line succeeded; 3: some lines failed; 4: the batch failed, expired or was
    cancelled; 1: the timeout ran out first; 130: interrupted (the batch runs on)."""
    with _session(url, api_key) as client:
        batch = _watch(client, batch_id, poll, timeout)
    _finish(batch, allow_failures)


def results(
    batch_id: BatchId,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the JSONL here (default: stdout).")
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: Key = None,
) -> None:
    """Write a batch's result lines (in input order, errors included); a batch still running
    gives the results finished so far."""
    with _session(url, api_key) as client, _sink(output) as out:
        resource = _resource(client, batch_id)
        ended = resource.get(batch_id).ended
        n = 0
        try:
            for item in resource.results_stream(batch_id):
                out.write(orjson.dumps(item.raw) + b"\n")
                n += 1
        except ResultDecodeError as exc:
            typer.echo(f"warning: {exc.message}", err=True)
    partial = "" if ended else " (the batch is still running: these are the finished ones)"
    typer.echo(f"{n} result lines{partial}" + (f" written to {output}" if output else ""),
               err=True)  # fmt: skip


@contextlib.contextmanager
def _sink(path: Path | None) -> Iterator[IO[bytes]]:
    """stdout, or ``path`` written whole or not at all."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.flush()
        return
    with atomic_file(path) as f:
        yield f


def cancel(batch_id: BatchId, url: Url = DEFAULT_URL, api_key: Key = None) -> None:
    """Cancel a batch: requests not yet sent end as cancelled; in-flight ones finish."""
    with _session(url, api_key) as client:
        batch: AnyBatch = _resource(client, batch_id).cancel(batch_id)
    typer.echo(f"{batch.id} {_snapshot(batch).status}")


def ls(
    limit: Annotated[int, typer.Option(help="How many of the newest to show.")] = 20,
    url: Url = DEFAULT_URL,
    api_key: Key = None,
) -> None:
    """List batches of both dialects, newest first."""
    with _session(url, api_key) as client:
        found: list[AnyBatch] = [*client.batches.list(limit=limit).data,
                                 *client.messages.batches.list(limit=limit).data]  # fmt: skip
    found.sort(key=lambda b: b.id, reverse=True)  # ids are time-sortable within a prefix
    found.sort(key=_created, reverse=True)
    rows = []
    for b in found[:limit]:
        snap = _snapshot(b)
        rows.append([b.id, snap.status, str(snap.done), str(snap.failed), str(snap.total),
                     _when(_created(b))])  # fmt: skip
    print_table(["id", "status", "done", "failed", "total", "created"], rows)


def _created(batch: AnyBatch) -> float:
    created = batch.created_at
    if isinstance(created, datetime):
        return created.timestamp()
    return float(created or 0)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


# -- files -------------------------------------------------------------------------------------


@files_app.command("ls")
def files_ls(
    purpose: Annotated[str | None, typer.Option(help="Only files of this purpose.")] = None,
    url: Url = DEFAULT_URL,
    api_key: Key = None,
) -> None:
    """List files, newest first."""
    with _session(url, api_key) as client:
        rows = [
            [f.id, f.purpose or "", str(f.bytes), f.filename or "", _when(f.created_at or 0)]
            for f in client.files.list_all(purpose=purpose)
        ]
    print_table(["id", "purpose", "bytes", "filename", "created"], rows)


@files_app.command("upload")
def files_upload(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    purpose: Annotated[str, typer.Option(help="The file's purpose.")] = "batch",
    url: Url = DEFAULT_URL,
    api_key: Key = None,
) -> None:
    """Upload a file (streamed); prints its id."""
    with _session(url, api_key) as client:
        typer.echo(client.files.create(path, purpose=purpose).id)


@files_app.command("get")
def files_get(file_id: str, url: Url = DEFAULT_URL, api_key: Key = None) -> None:
    """Print one file object as JSON."""
    with _session(url, api_key) as client:
        f = client.files.get(file_id)
    typer.echo(orjson.dumps(f.raw, option=orjson.OPT_INDENT_2).decode())


@files_app.command("content")
def files_content(
    file_id: str,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write it here (default: stdout).")
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: Key = None,
) -> None:
    """Download a file's content."""
    with _session(url, api_key) as client, _sink(output) as out:
        for chunk in client.files.content_stream(file_id):
            out.write(chunk)


@files_app.command("rm")
def files_rm(file_id: str, url: Url = DEFAULT_URL, api_key: Key = None) -> None:
    """Delete a file."""
    with _session(url, api_key) as client:
        client.files.delete(file_id)
    typer.echo(f"deleted {file_id}")
