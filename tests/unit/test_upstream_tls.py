"""Both upstream clients (fast and aiohttp) against a real https upstream (the simulator
behind TLS, trustme CA), a real HTTP CONNECT proxy, a listener that never accepts and a raw
server that records requests: TLS with ca_file, a refused certificate, verify = false, the
proxy from HTTPS_PROXY and NO_PROXY (resolved as the CLI does), the connect timeout apart
from the answer timeout, and the User-Agent. On asyncio and uvloop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import orjson
import pytest
import uvloop

from batchgate import __version__
from batchgate.cli.runtime import from_environment
from batchgate.config import Config, UpstreamConfig
from batchgate.providers.base import Attempt
from batchgate.providers.openai import OpenAIProvider
from tests.helpers.proxy import ConnectProxy
from tests.helpers.tls import TlsUpstream

pytestmark = pytest.mark.timeout(60)

CHAT = orjson.dumps({"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]})
CLIENTS = ["fast", "aiohttp"]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsUpstream]:
    with TlsUpstream(tmp_path_factory.mktemp("tls")) as upstream:
        yield upstream


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy() as running:
        yield running


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def send(upstream: UpstreamConfig, loop_kind: str, times: int = 1) -> list[Attempt]:
    """``times`` chat requests through a provider made for ``upstream``, on that loop."""

    async def main() -> list[Attempt]:
        provider = OpenAIProvider(upstream)
        try:
            return [await provider.send("/v1/chat/completions", CHAT) for _ in range(times)]
        finally:
            await provider.close()

    coro: Coroutine[Any, Any, list[Attempt]] = main()
    return uvloop.run(coro) if loop_kind == "uvloop" else asyncio.run(coro)


def ok(attempt: Attempt) -> bool:
    return attempt.status == 200 and orjson.loads(attempt.body)["object"] == "chat.completion"


@pytest.mark.parametrize("client", CLIENTS)
def test_tls_with_ca_file(tls: TlsUpstream, client: str, loop_kind: str) -> None:
    upstream = UpstreamConfig("s", tls.url, client=client, ca_file=tls.ca_file)
    assert all(ok(a) for a in send(upstream, loop_kind, times=3))


@pytest.mark.parametrize("client", CLIENTS)
def test_tls_without_the_ca_is_a_connect_error(tls: TlsUpstream, client: str) -> None:
    (attempt,) = send(UpstreamConfig("s", tls.url, client=client), "uvloop")
    assert (attempt.status, attempt.kind) == (None, "connect")
    assert "certificate verification failed" in attempt.message


@pytest.mark.parametrize("client", CLIENTS)
def test_verify_false_skips_the_check(tls: TlsUpstream, client: str) -> None:
    (attempt,) = send(UpstreamConfig("s", tls.url, client=client, verify=False), "uvloop")
    assert ok(attempt)


def from_env(upstream: UpstreamConfig) -> UpstreamConfig:
    """The upstream as the CLI hands it down, the environment's proxy filled in."""
    return from_environment(Config(upstreams=(upstream,))).upstreams[0]


@pytest.mark.parametrize("client", CLIENTS)
def test_https_proxy_from_the_environment(
    tls: TlsUpstream, proxy: ConnectProxy, client: str, loop_kind: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, proxy.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    upstream = from_env(UpstreamConfig("s", tls.url, client=client, ca_file=tls.ca_file))
    assert upstream.proxy == proxy.url
    assert all(ok(a) for a in send(upstream, loop_kind, times=3))
    assert proxy.tunnels == 1  # three requests, one kept-alive connection, one tunnel
    assert proxy.targets == [tls.url.split("/")[2]]


@pytest.mark.parametrize("client", CLIENTS)
def test_no_proxy_goes_direct(
    tls: TlsUpstream, proxy: ConnectProxy, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("https_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
    upstream = from_env(UpstreamConfig("s", tls.url, client=client, ca_file=tls.ca_file))
    assert upstream.proxy is None
    assert ok(send(upstream, "uvloop")[0])
    assert proxy.tunnels == 0


@pytest.mark.parametrize("client", CLIENTS)
def test_a_configured_proxy_is_used(tls: TlsUpstream, proxy: ConnectProxy, client: str) -> None:
    upstream = UpstreamConfig("s", tls.url, client=client, ca_file=tls.ca_file, proxy=proxy.url)
    assert ok(send(upstream, "uvloop")[0])
    assert proxy.tunnels == 1


@contextlib.contextmanager
def never_accepting() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops further SYNs, so a connect hangs
    (until the client gives up) instead of being refused."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = [socket.socket() for _ in range(4)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        try:
            yield port
        finally:
            for filler in fillers:
                filler.close()


@pytest.mark.parametrize("client", CLIENTS)
def test_connect_timeout_is_apart_from_the_answer_timeout(client: str, loop_kind: str) -> None:
    with never_accepting() as port:
        url = f"http://127.0.0.1:{port}/v1"
        upstream = UpstreamConfig("s", url, client=client, connect_timeout=0.3, timeout=30)
        started = time.monotonic()
        (attempt,) = send(upstream, loop_kind)
        elapsed = time.monotonic() - started
    assert (attempt.status, attempt.kind) == (None, "connect")
    assert "within 0.3 s" in attempt.message
    assert 0.25 < elapsed < 5


@pytest.mark.parametrize("client", CLIENTS)
def test_user_agent_reaches_the_upstream(client: str) -> None:
    heads: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head)
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        body = b'{"object":"chat.completion"}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    async def main() -> Attempt:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        provider = OpenAIProvider(UpstreamConfig("s", f"http://127.0.0.1:{port}/v1", client=client))
        try:
            return await provider.send("/v1/chat/completions", CHAT)
        finally:
            await provider.close()
            server.close()

    assert asyncio.run(main()).status == 200
    fields = dict(line.split(": ", 1) for line in heads[0].decode().split("\r\n")[1:] if line)
    assert {k.lower(): v for k, v in fields.items()}["user-agent"] == f"batchgate/{__version__}"
