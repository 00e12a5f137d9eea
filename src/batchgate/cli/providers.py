"""``batchgate providers``: list the configured providers and check each one answers.

The check is ``GET {url}/models`` with the provider's own auth headers, TLS settings and proxy
(``cli/checks.py``: the same check ``serve``, ``worker`` and ``run`` make at start), every
provider at once. Keys are read from their environment variables (by ``build_config``, at the
edge) to send, never printed: the listing says only whether each is set. The client column
names the HTTP client batch requests use, and the proxy they go through.
"""

from __future__ import annotations

from typing import Annotated

import typer

from batchgate.cli.checks import Check, check, check_all, problem_line
from batchgate.cli.common import (
    Concurrency,
    ConfigFile,
    KeyEnv,
    Rpm,
    Timeout,
    Tpm,
    Upstream,
    print_table,
)
from batchgate.config import Config, UpstreamConfig, redact
from batchgate.errors import BatchgateError

__all__ = ["Check", "check", "register", "rows"]

CheckTimeout = Annotated[
    float, typer.Option("--check-timeout", help="Seconds to wait for each provider's answer.")
]
NoCheck = Annotated[bool, typer.Option("--no-check", help="List only; do not contact anyone.")]
HEADER = [
    "name", "kind", "url", "client", "key", "concurrency", "rpm", "tpm", "models", "prices",
    "check",
]  # fmt: skip


def _key(upstream: UpstreamConfig) -> str:
    if not upstream.api_key_env:
        return "none"
    state = "set" if upstream.api_key else "not set"
    return f"${upstream.api_key_env} {state}"


def _client(upstream: UpstreamConfig) -> str:
    if upstream.proxy is None:
        return upstream.http_client
    return f"{upstream.http_client} via {redact(upstream.proxy)}"


def _prices(upstream: UpstreamConfig) -> str:
    if not upstream.prices:
        return "-"
    listed = ", ".join(f"{m}={p.input:g}/{p.output:g}" for m, p in upstream.prices)
    discount = f" x{upstream.batch_discount:g}" if upstream.batch_discount != 1 else ""
    return f"{listed} USD/Mtok{discount}"


def _limit(value: int) -> str:
    return str(value) if value else "-"


def rows(config: Config, checks: dict[str, Check] | None) -> list[list[str]]:
    """One table row per provider; ``checks`` None: the check column says "not checked"."""
    out = []
    for u in config.upstreams:
        name = f"{u.name} (default)" if u.name == config.default_upstream else u.name
        done = checks.get(u.name) if checks is not None else None
        out.append([
            name, u.kind, u.url, _client(u), _key(u), str(u.concurrency), _limit(u.rpm),
            _limit(u.tpm), ", ".join(u.models) or "-", _prices(u),
            done.detail if done else "not checked",
        ])  # fmt: skip
    return out


def providers(
    upstream: Upstream = None,
    config: ConfigFile = None,
    concurrency: Concurrency = 64,
    rpm: Rpm = 0,
    tpm: Tpm = 0,
    upstream_timeout: Timeout = 600.0,
    api_key_env: KeyEnv = "BATCHGATE_UPSTREAM_API_KEY",
    check_timeout: CheckTimeout = 5.0,
    no_check: NoCheck = False,
) -> None:
    """List the providers (from --config or --upstream) and check each is reachable; exits 1
    if one is not. Keys are never shown, only whether their variable is set."""
    from batchgate.cli import runtime as rt

    opts = rt.UpstreamOptions(
        upstream, config, concurrency, rpm, tpm, upstream_timeout, api_key_env, None, None
    )
    try:
        cfg = rt.build_config(opts)
    except BatchgateError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    checks = None if no_check else check_all(cfg.upstreams, check_timeout)
    print_table(HEADER, rows(cfg, checks))
    if checks is not None and not all(c.ok for c in checks.values()):
        bad = ", ".join(name for name, c in checks.items() if not c.ok)
        typer.echo(f"error: cannot serve requests: {bad}", err=True)  # why, line by line:
        for u in cfg.upstreams:
            if not checks[u.name].ok:
                typer.echo(f"  {problem_line(u, checks[u.name])}", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("providers")(providers)
