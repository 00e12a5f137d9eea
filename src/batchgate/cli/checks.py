"""Whether each upstream answers: ``GET {url}/models`` with its own auth headers (Bearer for
OpenAI-compatible servers, x-api-key + anthropic-version for Anthropic), its TLS settings and
its proxy. One implementation for ``batchgate providers`` (the table's check column) and for
the start of ``serve``, ``worker`` and ``run``, where a wrong URL or a server that is not up
would otherwise show only as every request failing, minutes later.

A problem is said in one line that names the upstream, its URL and the likely fix: a 404 on a
URL without ``/v1`` (the most common slip) says to add it, a 401/403 names the key variable,
a refused connection asks whether the server runs on that host and port.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import typer

from batchgate.config import UpstreamConfig
from batchgate.errors import ConfigError

__all__ = [
    "START_TIMEOUT", "Check", "check", "check_all", "problem_line", "refuse_unserving",
    "startup_problems",
]  # fmt: skip

START_TIMEOUT = 5.0  # seconds the start-up check waits for each upstream
BLOCKING_STATUSES = frozenset({401, 403, 404})  # a batch could not succeed: run refuses
NOT_STARTED = "Nothing was sent. Fix the upstream, or pass --no-check to start anyway."


@dataclass(frozen=True, slots=True)
class Check:
    """The answer to ``GET {url}/models``: ``status`` None when none came; then ``cause``
    says what kind of failure it was, when it is one with a known fix."""

    ok: bool
    detail: str  # "ok", "HTTP 401", "unreachable: <reason>"
    status: int | None = None
    cause: str = ""  # "refused", "dns", "tls" or "" (another failure, or an answer)

    @property
    def blocking(self) -> bool:
        """Whether no request could succeed this way: unreachable, 401/403, 404. Other
        answers (a 5xx, a 405 from a server without the listing) only warn."""
        return not self.ok and (self.status is None or self.status in BLOCKING_STATUSES)


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
        return Check(False, f"unreachable: {str(exc) or type(exc).__name__}", cause=_cause(exc))
    if resp.is_success:
        return Check(True, "ok", resp.status_code)
    return Check(False, f"HTTP {resp.status_code}", resp.status_code)


def check_all(upstreams: Sequence[UpstreamConfig], timeout: float) -> dict[str, Check]:
    """Every upstream checked at once (a thread each): the slowest bounds the wait, not the
    sum. By name, in the given order."""
    if not upstreams:
        return {}
    with ThreadPoolExecutor(max_workers=min(32, len(upstreams))) as pool:
        checks = list(pool.map(lambda u: check(u, timeout), upstreams))
    return {u.name: c for u, c in zip(upstreams, checks, strict=True)}


def startup_problems(
    upstreams: Sequence[UpstreamConfig], timeout: float = START_TIMEOUT
) -> list[tuple[Check, str]]:
    """The failed checks of ``upstreams``, each with its one line (empty: all answered)."""
    checks = check_all(upstreams, timeout)
    return [(checks[u.name], problem_line(u, checks[u.name])) for u in upstreams
            if not checks[u.name].ok]  # fmt: skip


def refuse_unserving(upstreams: Sequence[UpstreamConfig]) -> None:
    """``run``'s check: raise ConfigError (nothing sent, no state made) when an upstream
    could not serve a single request: unreachable, or answering 401/403/404. Other answers
    only warn, on stderr."""
    problems = startup_problems(upstreams)
    for _, line in (p for p in problems if not p[0].blocking):
        typer.echo(f"warning: {line}", err=True)
    blocking = [line for got, line in problems if got.blocking]
    if len(blocking) == 1:
        raise ConfigError(f"{blocking[0]}\n{NOT_STARTED}")
    if blocking:
        raise ConfigError("\n  ".join([f"{len(blocking)} upstreams cannot serve:", *blocking])
                          + f"\n{NOT_STARTED}")  # fmt: skip


def problem_line(upstream: UpstreamConfig, got: Check) -> str:
    """One line: which upstream, at which URL, what it did, and the likely fix."""
    if got.status is not None:
        what = f"answers HTTP {got.status} to GET /models"
    else:
        what = f"is unreachable ({got.detail.removeprefix('unreachable: ')})"
    fix = _fix(upstream, got)
    return f"upstream {upstream.name} ({upstream.url}) {what}" + (f": {fix}" if fix else "")


def _fix(upstream: UpstreamConfig, got: Check) -> str:
    url = urlsplit(upstream.url)
    if got.status == 404:
        if not url.path.rstrip("/").endswith("/v1"):
            return f"add /v1 to the URL ({upstream.url}/v1)?"
        return "is this the API's base URL (the one that serves /models)?"
    if got.status in (401, 403):
        return _key_fix(upstream)
    if got.cause == "refused":
        return f"is the server running on {url.hostname}:{_port(url.scheme, url.port)}?"
    if got.cause == "dns":
        return f"is the host name {url.hostname} right?"
    if got.cause == "tls":
        return "its certificate is not trusted: set ca_file (or verify = false) in the config"
    return ""


def _key_fix(upstream: UpstreamConfig) -> str:
    var = upstream.api_key_env
    if not var:
        return "it wants an API key: name the variable that holds it (--api-key-env or api_key_env)"
    if upstream.api_key is None:
        return f"${var} is not set; set it to the upstream's API key"
    return f"check the key in ${var}"


def _port(scheme: str, port: int | None) -> int:
    return port if port is not None else (443 if scheme == "https" else 80)


_CAUSES: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "refused"), (socket.gaierror, "dns"),
    (ssl.SSLCertVerificationError, "tls"),
)  # fmt: skip


def _cause(exc: BaseException) -> str:
    """The known failure kind somewhere in ``exc``'s chain (httpx wraps the OS error)."""
    seen: BaseException | None = exc
    for _ in range(16):  # a chain is short; a cycle must not hang the check
        if seen is None:
            break
        for kind, name in _CAUSES:
            if isinstance(seen, kind):
                return name
        seen = seen.__cause__ or seen.__context__
    return ""
