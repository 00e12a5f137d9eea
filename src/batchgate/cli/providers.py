"""``batchgate providers``: list the configured providers and check each one answers.

The check is ``GET {url}/models`` with the provider's own auth headers (Bearer for OpenAI-
compatible servers, x-api-key + anthropic-version for Anthropic), its TLS settings and proxy.
Keys are read from their environment variables (by ``build_config``, at the edge) to send,
never printed: the listing says only whether each is set. The client column names the HTTP
client batch requests use, and the proxy they go through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
import typer

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


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    detail: str  # "ok", "HTTP 401", "unreachable: <reason>"


def check(upstream: UpstreamConfig, timeout: float) -> Check:
    """Whether ``upstream`` answers ``GET {url}/models`` with a 2xx."""
    from batchgate.providers import AnthropicProvider, OpenAIProvider
    from batchgate.providers.http import USER_AGENT, HttpProvider, tls_context

    kinds: dict[str, type[HttpProvider]] = {
        "openai": OpenAIProvider, "anthropic": AnthropicProvider,
    }  # fmt: skip
    headers = {"User-Agent": USER_AGENT, **kinds[upstream.kind](upstream).auth_headers(upstream)}
    try:
        resp = httpx.get(
            f"{upstream.url}/models", headers=headers, timeout=timeout,
            verify=tls_context(upstream) or True, proxy=upstream.proxy,
            trust_env=False,  # the proxy was resolved from the environment already
        )  # fmt: skip
    except httpx.HTTPError as exc:
        return Check(False, f"unreachable: {_reason(exc)}")
    if resp.is_success:
        return Check(True, "ok")
    return Check(False, f"HTTP {resp.status_code}")


def _reason(exc: httpx.HTTPError) -> str:
    return str(exc) or type(exc).__name__


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
    checks = None if no_check else {u.name: check(u, check_timeout) for u in cfg.upstreams}
    print_table(HEADER, rows(cfg, checks))
    if checks is not None and not all(c.ok for c in checks.values()):
        bad = ", ".join(name for name, c in checks.items() if not c.ok)
        typer.echo(f"error: not reachable: {bad}", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("providers")(providers)
