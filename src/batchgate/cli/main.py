"""``batchgate``: the command line entry point (typer)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import Annotated, NoReturn

import typer

from batchgate.cli.options import EngineFlags, with_groups
from batchgate.errors import BatchgateError

app = typer.Typer(
    name="batchgate",
    help="A self-hosted LLM batch server: OpenAI batch files on any upstream, durably.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(exc: BatchgateError) -> NoReturn:
    typer.echo(f"error: {exc.message}", err=True)
    raise typer.Exit(2)


@app.command()
@with_groups
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    *,
    engine: EngineFlags,
    worker: Annotated[bool, typer.Option(help="Run a worker in this process.")] = True,
    open_: Annotated[
        bool,
        typer.Option("--open", help="With no live API key, serve anyone on this machine as one "
                     "tenant even if keys were made and revoked (loopback only)."),
    ] = False,
) -> None:  # fmt: skip
    """Run the API (OpenAI Files + Batches) with an in-process worker."""
    import uvicorn

    from batchgate.api import Runtime, create_app
    from batchgate.cli import keys
    from batchgate.cli import runtime as rt
    from batchgate.engine.worker import Worker
    from batchgate.service import Service

    try:
        keys.refuse_public_open(host, open_)
        sock = rt.bind(host, port)
        if worker:
            rt.lock_worker(engine.stores())
        cfg, store, blobs, opts = engine.prepare()
        allow_open = keys.open_mode_allowed(store, host, force_open=open_)
    except BatchgateError as exc:
        _fail(exc)
    inproc = Worker(store, blobs, cfg, opts) if worker else None
    service = Service(store, blobs, cfg, wake=inproc.wake if inproc else lambda: None)
    runtime = Runtime(service, inproc, allow_open=allow_open, open_after_revoke=open_)
    config = uvicorn.Config(
        create_app(runtime), host=host, port=port, loop="uvloop", http="httptools",
        log_level=engine.log_level.lower(), access_log=False, timeout_graceful_shutdown=10,
    )  # fmt: skip
    uvicorn.Server(config).run(sockets=[sock])
    store.close()


@app.command("worker")
@with_groups
def worker_cmd(*, engine: EngineFlags) -> None:
    """Run a worker without the API (several may share one PostgreSQL database)."""
    import uvloop

    from batchgate.cli import runtime as rt
    from batchgate.engine.worker import Worker

    try:
        rt.lock_worker(engine.stores())
        cfg, store, blobs, opts = engine.prepare()
    except BatchgateError as exc:
        _fail(exc)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print("batchgate worker started", flush=True)
        await Worker(store, blobs, cfg, opts).run(stop)

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main())
    store.close()


@app.command()
def simulate(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
    latency_ms: Annotated[float, typer.Option(help="Mean added latency per reply.")] = 0.0,
    jitter_ms: Annotated[float, typer.Option(help="Uniform ± jitter on the latency.")] = 0.0,
    rate_429: Annotated[float, typer.Option(help="Share of requests answered 429.")] = 0.0,
    rate_500: Annotated[float, typer.Option(help="Share answered 500.")] = 0.0,
    rate_503: Annotated[float, typer.Option(help="Share answered 503.")] = 0.0,
    rate_529: Annotated[
        float, typer.Option(help="Share answered 529 overloaded (503 on OpenAI endpoints).")
    ] = 0.0,
    rate_drop: Annotated[float, typer.Option(help="Share whose connection is dropped.")] = 0.0,
    rate_slow: Annotated[float, typer.Option(help="Share answered after --slow-ms.")] = 0.0,
    slow_ms: Annotated[float, typer.Option(help="Delay of a slow reply.")] = 30_000.0,
    rate_malformed: Annotated[float, typer.Option(help="Share answered with bad JSON.")] = 0.0,
    retry_after_s: Annotated[float, typer.Option(help="Retry-After on 429/503/529.")] = 1.0,
    overload: Annotated[
        int,
        typer.Option(
            "--overload",
            help="Answer 429 (529 on /v1/messages) beyond this many in flight (0 = off).",
        ),
    ] = 0,
    rpm_limit: Annotated[
        int,
        typer.Option(
            help="Requests per minute per API key; beyond it 429 with Retry-After, and every "
            "answer carries rate-limit headers (0 = off)."
        ),
    ] = 0,
    rpm_burst: Annotated[
        float,
        typer.Option(help="Requests a key may send at once under --rpm-limit (0 = a minute's)."),
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed for fault draws.")] = 0,
) -> None:
    """Run the simulated OpenAI- and Anthropic-compatible upstream (tests, demos, benchmarks)."""
    from batchgate.sim import SimConfig, run_simulator

    try:
        cfg = SimConfig(
            latency_ms=latency_ms, jitter_ms=jitter_ms, rate_429=rate_429, rate_500=rate_500,
            rate_503=rate_503, rate_529=rate_529, rate_drop=rate_drop, rate_slow=rate_slow,
            slow_ms=slow_ms,
            rate_malformed=rate_malformed, retry_after_s=retry_after_s,
            overload_max_in_flight=overload, rpm_limit=rpm_limit, rpm_burst=rpm_burst, seed=seed,
        )  # fmt: skip
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    run_simulator(cfg, host, port)


def _register_commands() -> None:
    from batchgate.cli import budgets, keys, providers, remote, run, usage

    run.register(app)
    remote.register(app)
    keys.register(app)
    budgets.register(app)
    usage.register(app)
    providers.register(app)


_register_commands()


def main() -> None:
    try:
        app()
    except BatchgateError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(2)
