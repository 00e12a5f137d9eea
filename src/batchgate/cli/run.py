"""``batchgate run INPUT -o OUTPUT``: one batch file through the engine on this machine, no server.

The same store, validation, worker and renderer as ``batchgate serve``, on a private state
directory beside the output (``OUTPUT.batchgate/``). Running the same command again resumes a
killed or interrupted run without re-sending what is already recorded. Heavy imports happen
inside the command, so ``batchgate --help`` and the other commands stay quick to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shlex
import signal
import sys
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from batchgate.cli.common import (
    AllowFailures,
    Exit,
    LogLevel,
    MaxAttempts,
    RetryBase,
    atomic_file,
    first_object,
    outcome,
)
from batchgate.cli.options import UpstreamFlags, with_groups
from batchgate.cli.runretry import HELP as RETRY_HELP
from batchgate.cli.runretry import RetryFailed, RunCommand, requeue, retry_command
from batchgate.cli.runstate import RunState, fingerprint
from batchgate.domain.budget import budget_object, parse_budget_usd
from batchgate.domain.cost import usd
from batchgate.errors import BatchgateError, ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from batchgate.cli.progress import ProgressView, Snapshot
    from batchgate.cli.runtime import UpstreamOptions
    from batchgate.config import Config
    from batchgate.domain.records import Batch, FinishedRow
    from batchgate.engine.worker import WorkerOptions
    from batchgate.service import Operations
    from batchgate.storage.blobs import BlobStore
    from batchgate.storage.sql import SqlStore as Store

DEFAULT_ENDPOINT = "/v1/chat/completions"
WINDOW = "168h"  # the longest window the service takes: a local run should not expire midway
POLL_S = 0.5

Opt = typer.Option
RUN_HELP = """Run one OpenAI batch file (JSONL) against an upstream on this machine, no server.

OUTPUT gets one line per input line, in input order, in the OpenAI batch output format (with
--errors, failed lines go to that file instead). State is kept beside OUTPUT: run the same
command again to resume after a crash or Ctrl-C; --retry-failed sends the failed lines again,
keeping the others; --fresh starts over.

Exit status: 0 every line succeeded, 3 some lines failed (0 with --allow-failures), 4 the
batch failed (an invalid input file: nothing was sent) or expired, 2 bad options, config or
state, 130 interrupted (resume by running the same command again).
"""


@dataclass(frozen=True)
class RunArgs:
    input: Path
    output: Path
    errors: Path | None
    state_dir: Path
    endpoint: str | None
    fresh: bool
    upstreams: UpstreamOptions
    max_attempts: int
    retry_base_delay: float
    argv: tuple[str, ...]  # as typed, for the resume hint
    budget_usd: str | None = None
    check: bool = True  # the upstreams' start-up check (--no-check: off)
    allow_failures: bool = False
    retry: RetryFailed | None = None  # --retry-failed [CODES]


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to ``app``."""
    app.command("run", help=RUN_HELP, cls=RunCommand)(with_groups(run_command))


def run_command(
    input_file: Annotated[
        Path, typer.Argument(metavar="INPUT", help="OpenAI batch input file (JSONL).",
                             exists=True, dir_okay=False, readable=True)
    ],
    output: Annotated[Path, Opt("-o", "--output", help="Where the output JSONL goes.")],
    errors: Annotated[
        Path | None, Opt("--errors", help="Put failed lines here (OUTPUT keeps the successes).")
    ] = None,
    *,
    upstreams: UpstreamFlags,
    max_attempts: MaxAttempts = 5,
    retry_base_delay: RetryBase = 1.0,
    endpoint: Annotated[
        str | None, Opt(help="Batch endpoint (default: the first line's url).")
    ] = None,
    budget_usd: Annotated[
        str | None,
        Opt(help="Spend at most this many USD (needs prices): once reached, the lines not yet "
            "sent end with budget_exceeded."),
    ] = None,
    fresh: Annotated[bool, Opt("--fresh", help="Discard earlier state and start over.")] = False,
    retry_failed: Annotated[
        str | None, Opt("--retry-failed", metavar="[CODES]", help=RETRY_HELP)
    ] = None,
    state_dir: Annotated[
        Path | None, Opt(help="State directory (default: OUTPUT.batchgate beside OUTPUT).")
    ] = None,
    allow_failures: AllowFailures = False,
    log_level: LogLevel = "warning",
) -> None:  # fmt: skip
    from batchgate.cli.runtime import setup_logging

    setup_logging(log_level)
    try:
        args = RunArgs(
            input_file, output, errors, state_dir or output.with_name(output.name + ".batchgate"),
            endpoint, fresh, upstreams.options(), max_attempts, retry_base_delay,
            tuple(sys.argv[1:]), budget_usd, not upstreams.no_check, allow_failures,
            RetryFailed.parse(retry_failed),
        )  # fmt: skip
    except BatchgateError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(Exit.USAGE) from None
    try:
        code = execute(args)
    except BatchgateError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        code = Exit.USAGE
    except KeyboardInterrupt:
        typer.echo(f"\nInterrupted. Resume with:\n  {resume_command(args.argv)}", err=True)
        code = Exit.INTERRUPTED
    raise typer.Exit(code)


def resume_command(argv: tuple[str, ...]) -> str:
    """The command that resumes this run: the same one, less ``--fresh``."""
    return shlex.join(["batchgate", *(a for a in argv if a != "--fresh")])


# -- the run ---------------------------------------------------------------------------------------


def execute(args: RunArgs) -> Exit:
    """Run (or resume) the batch of ``args``; the exit status."""
    from batchgate.cli import runtime as rt

    config = rt.local_limits(rt.build_config(args.upstreams))
    _check_paths(args)
    if args.check:
        from batchgate.cli.checks import refuse_unserving

        refuse_unserving(config.upstreams)
    state = RunState(args.state_dir)
    urls = {u.name: u.url for u in config.upstreams}
    with state.locked():
        state.adopt(fingerprint(args.input), list(urls), args.fresh, urls)
        _say_moved(state, urls)
        store, blobs = rt.open_backends(rt.StoreOptions(state.path, None))
        try:
            code, invalid = _run_batch(args, state, store, blobs, config)
        finally:
            store.close()
        if invalid:
            state.remove()  # nothing was sent: a corrected file must not need --fresh
    return code


def _say_moved(state: RunState, urls: dict[str, str]) -> None:
    """One line per upstream whose URL changed since the last run: allowed (rows name their
    upstream, not its URL), and said, since the lines left then go somewhere else."""
    moved = state.moved_upstreams(urls)
    for name, old, new in moved:
        which = "upstream" if len(urls) == 1 else f"upstream {name}"
        typer.echo(f"{which} changed since the last run: {old} -> {new}", err=True)


def _check_paths(args: RunArgs) -> None:
    from batchgate.service import ENDPOINTS

    if args.fresh and args.retry is not None:
        raise ConfigError("--fresh starts over, so --retry-failed would have nothing to retry; "
                          "pass one of them.")  # fmt: skip
    if args.endpoint is not None and args.endpoint not in ENDPOINTS:
        raise ConfigError(f"--endpoint {args.endpoint!r}: expected one of {', '.join(ENDPOINTS)}.")
    parse_budget_usd(args.budget_usd, "--budget-usd")
    paths = [p.resolve() for p in (args.input, args.output, args.errors) if p is not None]
    if len(set(paths)) < len(paths):
        raise ConfigError("INPUT, --output and --errors must each name a different file.")
    for path in paths[1:]:
        path.parent.mkdir(parents=True, exist_ok=True)


def _run_batch(
    args: RunArgs, state: RunState, store: Store, blobs: BlobStore, cfg: Config
) -> tuple[Exit, bool]:
    """Drive the state's batch to its end and write the results; the exit code, and whether
    the input was invalid (the batch failed validation: nothing was sent)."""
    from rich.console import Console

    from batchgate.domain.states import TERMINAL
    from batchgate.service import Operations

    started = time.monotonic()
    console = Console(stderr=True)
    store.release_all_leases(time.time())  # our lock: whatever holds a lease is dead
    batch = _find_or_create(Operations(store, blobs, cfg), args)
    if args.retry is not None:
        state.check_upstreams([u.name for u in cfg.upstreams])  # before a row moves
        batch = requeue(store, batch, args.retry, console)
    done_before = int(batch.completed or 0) + int(batch.failed or 0)
    interrupted = False
    if batch.status not in TERMINAL:
        state.check_upstreams([u.name for u in cfg.upstreams])
        interrupted = _drive(store, blobs, cfg, _worker_options(args), batch.id, console)
    batch = store.get_batch(batch.id) or batch
    if interrupted and batch.status not in TERMINAL:
        _report_interrupted(console, batch, args)
        return Exit.INTERRUPTED, False
    if batch.status == "failed":
        _report_invalid(console, batch, args.input)
        return outcome(batch.status, 0), True
    tally = write_results(store, batch.id, args.output, args.errors)
    elapsed = time.monotonic() - started
    typer.echo(summary(batch, tally, args, elapsed, done_before))
    return outcome(batch.status, tally.failed, allow_failures=args.allow_failures), False


def _worker_options(args: RunArgs) -> WorkerOptions:
    from batchgate.cli.runtime import worker_options

    opts = worker_options(
        lease_ttl=30.0, max_attempts=args.max_attempts, retry_base_delay=args.retry_base_delay,
        poll_interval=0.1,
    )  # fmt: skip
    return dataclasses.replace(opts, hold_until_recorded=True)


def _find_or_create(service: Operations, args: RunArgs) -> Batch:
    """The state's one batch, created from INPUT on the first run."""
    from batchgate.errors import InvalidRequest

    found, _ = service.store.list_batches(None, after=None, limit=1)
    if found:
        batch = found[0]
        if args.endpoint and args.endpoint != batch.endpoint:
            raise ConfigError(
                f"This run's batch uses endpoint {batch.endpoint}, not {args.endpoint}; "
                "drop --endpoint to resume it, or pass --fresh to start over."
            )
        budget = parse_budget_usd(args.budget_usd, "--budget-usd")
        if budget is not None and budget != batch.budget_ticks:
            raise ConfigError(
                f"This run's batch has {_budget(batch)}, not {usd(budget)} USD; drop "
                "--budget-usd to resume it, or pass --fresh to start over."
            )
        return batch
    try:
        with open(args.input, "rb") as src:
            file = service.upload_file("", filename=args.input.name, purpose="batch", src=src)
    except InvalidRequest as exc:
        if exc.code == "file_too_large":
            raise ConfigError(f"{exc.message} Pass --max-file-mb N to allow more.") from None
        raise
    body = {"input_file_id": file.id, "completion_window": WINDOW,
            "endpoint": args.endpoint or first_url(args.input),
            "budget_usd": args.budget_usd}  # fmt: skip
    return service.create_batch("openai", "", body)


def first_url(path: Path) -> str:
    """The endpoint the first line names. Anything else gives the default endpoint, and the
    validation then reports the located errors as the server would."""
    from batchgate.service import ENDPOINTS

    url = first_object(path).get("url")
    return url if isinstance(url, str) and url in ENDPOINTS else DEFAULT_ENDPOINT


# -- driving the worker ----------------------------------------------------------------------------


def _drive(
    store: Store, blobs: BlobStore, cfg: Config, opts: WorkerOptions, batch_id: str,
    console: Console,
) -> bool:  # fmt: skip
    """Run an in-process worker until the batch ends or a signal comes; True if interrupted."""
    import uvloop

    from batchgate.cli.progress import ProgressView

    with ProgressView("batchgate run", console=console) as view:
        return bool(uvloop.run(_work(store, blobs, cfg, opts, batch_id, view)))


async def _work(
    store: Store, blobs: BlobStore, cfg: Config, opts: WorkerOptions, batch_id: str,
    view: ProgressView,
) -> bool:  # fmt: skip
    from batchgate.engine.worker import Worker

    stop, signals = asyncio.Event(), list[int]()

    def on_signal(sig: int) -> None:
        if signals:  # a second Ctrl-C: quit at once; the store is durable and the lock dies too
            os._exit(Exit.INTERRUPTED)
        signals.append(sig)
        view.console.print(
            "Stopping: handing back unsent requests (Ctrl-C again to quit now)...",
            markup=False, highlight=False,
        )  # fmt: skip
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    task = asyncio.create_task(Worker(store, blobs, cfg, opts).run(stop))
    try:
        await _watch(store, batch_id, view, stop, task)
    finally:
        stop.set()
        await task  # the worker's own failure, if any, surfaces here
    return bool(signals)


async def _watch(
    store: Store, batch_id: str, view: ProgressView, stop: asyncio.Event, worker: asyncio.Task[None]
) -> None:
    from batchgate.domain.states import TERMINAL

    retrying = RetryingCount(store, batch_id)
    while True:
        batch = await store.call(store.get_batch, batch_id)
        assert batch is not None
        view.update(snapshot(batch, await retrying.get(), await _waiting_for(store, batch)))
        if batch.status in TERMINAL or stop.is_set() or worker.done():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(POLL_S):
                await stop.wait()


def snapshot(batch: Batch, retrying: int, waiting_for: tuple[str, ...] = ()) -> Snapshot:
    from batchgate.cli.progress import Snapshot

    return Snapshot(
        total=int(batch.total or 0), succeeded=int(batch.completed or 0),
        failed=int(batch.failed or 0), retrying=retrying, status=str(batch.status),
        tokens=int(batch.input_tokens or 0) + int(batch.output_tokens or 0),
        waiting_for=waiting_for,
    )  # fmt: skip


async def _waiting_for(store: Store, batch: Batch) -> tuple[str, ...]:
    """The upstreams whose circuit is open, as the progress view says them."""
    from batchgate.cli.progress import unavailable_notes
    from batchgate.domain.health import upstreams_object

    if not batch.upstreams:
        return ()
    down = await store.call(store.unavailable_upstreams, time.time())
    health = tuple(down[name] for name in batch.upstreams.split(",") if name in down)
    return unavailable_notes(upstreams_object(dataclasses.replace(batch, health=health)))


class RetryingCount:
    """How many rows wait for a retry, re-read at most every few seconds: the count scans the
    batch's queued rows, which is costly early in a large batch."""

    def __init__(self, store: Store, batch_id: str) -> None:
        self.store, self.batch_id = store, batch_id
        self.value, self._due = 0, 0.0

    async def get(self) -> int:
        start = time.monotonic()
        if start >= self._due:
            self.value = await self.store.call(self.store.count_retrying, self.batch_id)
            took = time.monotonic() - start
            self._due = time.monotonic() + max(1.0, 50 * took)
        return self.value


# -- results and reports ---------------------------------------------------------------------------


@dataclass
class Tally:
    """What was written: lines by outcome and the failed lines' error codes."""

    succeeded: int = 0
    failed: int = 0
    codes: Counter[str] = field(default_factory=Counter)

    def add(self, good: bool, row: FinishedRow) -> None:
        if good:
            self.succeeded += 1
            return
        self.failed += 1
        code, status = row.error_code or "unknown_error", row.status_code
        self.codes[f"{code} (HTTP {status})" if status else code] += 1


def write_results(store: Store, batch_id: str, output: Path, errors: Path | None) -> Tally:
    """OUTPUT (and ERRORS) from the rows in input order, each renamed into place only once
    complete: a killed run never leaves a partial file under the final name."""
    from batchgate.dialects.openai import render

    tally = Tally()
    with ExitStack() as stack:
        out = stack.enter_context(atomic_file(output))
        err = stack.enter_context(atomic_file(errors)) if errors is not None else out
        for row in store.iter_finished_rows(batch_id):
            good, line = render(batch_id, row)
            (out if good else err).write(line)
            tally.add(good, row)
    return tally


def summary(batch: Batch, tally: Tally, args: RunArgs, elapsed: float, done_before: int) -> str:
    from batchgate.cli.progress import format_duration, format_rate

    total = tally.succeeded + tally.failed
    codes = "; ".join(f"{code}: {n}" for code, n in tally.codes.most_common(5))
    codes += f"; {len(tally.codes) - 5} more codes" if len(tally.codes) > 5 else ""
    ran = total - done_before
    earlier = f" ({done_before} were done by an earlier run)" if done_before else ""
    tokens_in, tokens_out = int(batch.input_tokens or 0), int(batch.output_tokens or 0)
    took = f"{elapsed:.1f}s" if elapsed < 60 else format_duration(elapsed)
    lines = [
        f"batchgate run: batch {batch.status} in {took}",
        f"  requests  {total}: {tally.succeeded} succeeded, {tally.failed} failed"
        + (f" ({codes})" if codes else ""),
        f"  this run  {ran} finished, {format_rate(ran / max(elapsed, 1e-3))} req/s{earlier}",
        f"  tokens    {tokens_in + tokens_out} ({tokens_in} in, {tokens_out} out)",
        f"  cost      {_cost(batch)}",
        *([f"  budget    {_budget(batch)}"] if batch.budget_ticks is not None else []),
        f"  output    {args.output} ({tally.succeeded if args.errors else total} lines)",
    ]
    if args.errors is not None:
        lines.append(f"  errors    {args.errors} ({tally.failed} lines)")
    lines.append(f"  state     {args.state_dir} (the same command again rewrites the output)")
    if tally.failed and batch.status == "completed":
        lines.append(f"  retry     {retry_command(args.argv)} (sends the failed lines again)")
    return "\n".join(lines)


def _cost(batch: Batch) -> str:
    known = f"${usd(int(batch.cost_ticks or 0))}"
    if batch.unpriced:
        return f"at least {known} ({batch.unpriced} requests on a model with no price)"
    return known


def _budget(batch: Batch) -> str:
    budget = budget_object(batch)
    if budget is None:
        return "no budget"
    return f"a budget of {budget['usd']} USD" + (" (reached)" if budget["reached"] else "")


def _report_interrupted(console: Console, batch: Batch, args: RunArgs) -> None:
    done, total = int(batch.completed) + int(batch.failed), int(batch.total)
    console.print(
        f"Interrupted: {done} of {total or '?'} requests done ({batch.failed} failed); "
        f"what is done is kept in {args.state_dir}.\nResume with:\n  {resume_command(args.argv)}",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip


def _report_invalid(console: Console, batch: Batch, path: Path) -> None:
    hints = {"too_many_tasks": "--max-lines N", "file_too_large": "--max-file-mb N"}
    errors = orjson.loads(batch.errors or "{}").get("data") or []
    lines = [f"error: {path} is not a valid batch input file; nothing was sent:"]
    for e in errors:
        where = f"code {e['code']}" + (f", param {e['param']}" if e.get("param") else "")
        hint = f" Pass {hints[e['code']]} to allow more." if e["code"] in hints else ""
        lines.append(f"  {e['message']} ({where}){hint}")
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
