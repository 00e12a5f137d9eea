"""FastHttpClient (providers/fasthttp.py) against the simulator and tiny raw asyncio servers,
on both asyncio and uvloop, and HttpProvider on top of it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any

import orjson
import pytest
import uvloop

from batchgate.config import UpstreamConfig
from batchgate.providers.base import Attempt
from batchgate.providers.fasthttp import FastHttpClient
from batchgate.providers.http import AiohttpTransport
from batchgate.providers.openai import OpenAIProvider
from batchgate.sim import SimConfig, SimHandle, start_in_thread

CHAT = orjson.dumps(
    {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
)
Runner = Callable[[Coroutine[Any, Any, Any]], Any]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Runner:
    def runner(coro: Coroutine[Any, Any, Any]) -> Any:
        if request.param == "uvloop":
            return uvloop.run(coro)
        return asyncio.run(coro)

    return runner


@pytest.fixture
def sim() -> Iterator[SimHandle]:
    with start_in_thread(SimConfig()) as handle:
        yield handle


def client_for(url: str, timeout: float = 5.0, **kw: Any) -> FastHttpClient:
    return FastHttpClient(url, headers={"Authorization": "Bearer k"}, timeout=timeout, **kw)


# -- against the simulator -----------------------------------------------------------------


def test_chat_round_trip(run: Runner, sim: SimHandle) -> None:
    async def main() -> tuple[int, Any, bytes]:
        client = client_for(sim.url)
        try:
            return await client.post(sim.url + "/chat/completions", CHAT)
        finally:
            await client.close()

    status, headers, body = run(main())
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert all(name == name.lower() for name in headers)
    reply = orjson.loads(body)
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"]["role"] == "assistant"
    assert sim.stats()["requests"] == 1


def test_keep_alive_reuses_one_connection(run: Runner, sim: SimHandle) -> None:
    async def main() -> int:
        client = client_for(sim.url)
        try:
            for _ in range(50):
                status, _, body = await client.post(sim.url + "/chat/completions", CHAT)
                assert status == 200
                orjson.loads(body)
            return client.connections_opened
        finally:
            await client.close()

    assert run(main()) == 1
    assert sim.stats()["requests"] == 50


def test_concurrent_posts(run: Runner, sim: SimHandle) -> None:
    bodies = [
        orjson.dumps({"model": "sim-model", "messages": [{"role": "user", "content": f"n{i}"}]})
        for i in range(200)
    ]

    async def main() -> tuple[list[tuple[int, Any, bytes]], int]:
        client = client_for(sim.url)
        try:
            url = sim.url + "/chat/completions"
            first = await asyncio.gather(*(client.post(url, b) for b in bodies))
            second = await asyncio.gather(*(client.post(url, b) for b in bodies))
            return first + second, client.connections_opened
        finally:
            await client.close()

    replies, opened = run(main())
    assert len(replies) == 400
    assert all(status == 200 for status, _, _ in replies)
    assert all(orjson.loads(body)["object"] == "chat.completion" for _, _, body in replies)
    assert opened <= 200  # the second wave reused the first wave's connections
    assert sim.stats()["requests"] == 400


def test_drop_is_a_connection_error(run: Runner, sim: SimHandle) -> None:
    sim.configure(rate_drop=1.0)

    async def main() -> None:
        client = client_for(sim.url)
        try:
            with pytest.raises(ConnectionError, match="closed the connection"):
                await client.post(sim.url + "/chat/completions", CHAT)
            # a reused connection cannot be involved: the dropped one was never pooled
            with pytest.raises(ConnectionError):
                await client.post(sim.url + "/chat/completions", CHAT)
            assert client.connections_opened == 2
        finally:
            await client.close()

    run(main())
    assert sim.stats()["dropped"] == 2


def test_slow_reply_times_out_and_connection_is_not_reused(run: Runner, sim: SimHandle) -> None:
    async def main() -> None:
        client = client_for(sim.url, timeout=0.3)
        url = sim.url + "/chat/completions"
        try:
            assert (await client.post(url, CHAT))[0] == 200
            sim.configure(rate_slow=1.0, slow_ms=2000)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TimeoutError):
                await client.post(url, CHAT)
            assert loop.time() - started < 1.5
            sim.configure(rate_slow=0.0)
            assert (await client.post(url, CHAT))[0] == 200
            assert client.connections_opened == 2  # the timed-out one was closed
        finally:
            await client.close()

    run(main())


def test_malformed_json_comes_back_as_bytes(run: Runner, sim: SimHandle) -> None:
    sim.configure(rate_malformed=1.0)

    async def main() -> tuple[int, Any, bytes]:
        client = client_for(sim.url)
        try:
            return await client.post(sim.url + "/chat/completions", CHAT)
        finally:
            await client.close()

    status, _, body = run(main())
    assert status == 200
    assert body.startswith(b"{")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)


def test_http_error_status_is_a_response(run: Runner, sim: SimHandle) -> None:
    sim.configure(rate_429=1.0, retry_after_s=3)

    async def main() -> tuple[int, Any, bytes]:
        client = client_for(sim.url)
        try:
            return await client.post(sim.url + "/chat/completions", CHAT)
        finally:
            await client.close()

    status, headers, _ = run(main())
    assert status == 429
    assert headers["retry-after"] == "3"


# -- against tiny raw servers ----------------------------------------------------------------


class RawServer:
    """Counts connections and requests; ``handler`` answers each connection."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []  # each request's head + body
        self.port = 0


async def read_request(reader: asyncio.StreamReader, server: RawServer) -> bytes | None:
    """One request off the stream (head + Content-Length body), or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    request = head + await reader.readexactly(length)
    server.requests.append(request)
    return request


@contextlib.asynccontextmanager
async def raw_server(
    answer: Callable[[asyncio.StreamReader, asyncio.StreamWriter, RawServer, int], Awaitable[None]],
) -> AsyncIterator[RawServer]:
    """A server whose ``answer(reader, writer, state, connection_index)`` serves a
    connection; the connection is closed when it returns."""
    state = RawServer()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = state.connections
        state.connections += 1
        try:
            await answer(reader, writer, state, index)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1)


def ok(body: bytes, *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def keep_alive_ok(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawServer, _: int
) -> None:
    while await read_request(reader, state) is not None:
        writer.write(ok(b'{"ok":true}', "X-Request-Id: r1"))
        await writer.drain()


def test_request_format(run: Runner) -> None:
    async def main() -> None:
        async with raw_server(keep_alive_ok) as server:
            base = f"http://127.0.0.1:{server.port}/v1"
            client = FastHttpClient(
                base, headers={"Authorization": "Bearer sk-1", "anthropic-version": "x"}, timeout=5
            )
            try:
                status, headers, body = await client.post(base + "/chat/completions", b'{"a":1}')
            finally:
                await client.close()
            assert (status, body, headers["x-request-id"]) == (200, b'{"ok":true}', "r1")
            head, sent = server.requests[0].split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            assert lines[0] == "POST /v1/chat/completions HTTP/1.1"
            fields = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
            assert fields == {
                "host": f"127.0.0.1:{server.port}",
                "content-type": "application/json",
                "accept-encoding": "identity",
                "connection": "keep-alive",
                "authorization": "Bearer sk-1",
                "anthropic-version": "x",
                "content-length": "7",
            }
            assert sent == b'{"a":1}'

    run(main())


def test_chunked_response(run: Runner) -> None:
    async def chunked(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawServer, _: int
    ) -> None:
        while await read_request(reader, state) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nx-a: 2\r\n")
            await writer.drain()
            for piece in (b"\r\n5\r\nhel", b"lo\r\n6\r\n", b" world\r\n", b"0\r\n\r\n"):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.005)

    async def main() -> None:
        async with raw_server(chunked) as server:
            client = client_for(f"http://127.0.0.1:{server.port}")
            try:
                for _ in range(3):
                    status, headers, body = await client.post("/x", b"{}")
                    assert (status, body) == (200, b"hello world")
                    assert headers["x-a"] == "1, 2"
                assert client.connections_opened == 1
            finally:
                await client.close()

    run(main())


def test_connection_close_response_is_not_reused(run: Runner) -> None:
    async def close_after(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawServer, _: int
    ) -> None:
        await read_request(reader, state)
        writer.write(ok(b"bye", "Connection: close"))
        await writer.drain()
        await asyncio.sleep(0.2)  # the client must not wait for the close to pick a new one

    async def main() -> None:
        async with raw_server(close_after) as server:
            client = client_for(f"http://127.0.0.1:{server.port}")
            try:
                assert (await client.post("/x", b"{}"))[::2] == (200, b"bye")
                assert (await client.post("/x", b"{}"))[::2] == (200, b"bye")
                assert client.connections_opened == server.connections == 2
            finally:
                await client.close()

    run(main())


def test_idle_connection_closed_by_server_is_replaced(run: Runner) -> None:
    async def one_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawServer, _: int
    ) -> None:
        await read_request(reader, state)
        writer.write(ok(b"1"))  # keep-alive, then close while idle
        await writer.drain()

    async def main() -> None:
        async with raw_server(one_then_close) as server:
            client = client_for(f"http://127.0.0.1:{server.port}")
            try:
                assert (await client.post("/x", b"{}"))[0] == 200
                await asyncio.sleep(0.1)  # the close is seen: the pool drops the connection
                assert (await client.post("/x", b"{}"))[0] == 200
                assert client.connections_opened == 2
            finally:
                await client.close()

    run(main())


def test_stale_keep_alive_is_retried_once_on_a_fresh_connection(run: Runner) -> None:
    async def first_conn_dies_on_second_request(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawServer, index: int
    ) -> None:
        served = 0
        while await read_request(reader, state) is not None:
            if index == 0 and served == 1:
                return  # closed with no answer, as if it had timed out just before
            writer.write(ok(b"%d" % index))
            await writer.drain()
            served += 1

    async def main() -> None:
        async with raw_server(first_conn_dies_on_second_request) as server:
            client = client_for(f"http://127.0.0.1:{server.port}")
            try:
                assert (await client.post("/x", b"{}"))[2] == b"0"
                assert (await client.post("/x", b"{}"))[2] == b"1"  # retried on connection 1
                assert (await client.post("/x", b"{}"))[2] == b"1"
                assert client.connections_opened == server.connections == 2
                assert len(server.requests) == 4
            finally:
                await client.close()

    run(main())


def test_fresh_connection_closed_early_is_not_retried(run: Runner) -> None:
    async def never_answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawServer, _: int
    ) -> None:
        await read_request(reader, state)

    async def main() -> None:
        async with raw_server(never_answer) as server:
            client = client_for(f"http://127.0.0.1:{server.port}")
            try:
                with pytest.raises(ConnectionError, match="before a complete response"):
                    await client.post("/x", b"{}")
                assert server.connections == 1
            finally:
                await client.close()

    run(main())


def test_body_until_close(run: Runner) -> None:
    async def no_length(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawServer, _: int
    ) -> None:
        await read_request(reader, state)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"a":')
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b"1}")
        await writer.drain()

    async def main() -> None:
        async with raw_server(no_length) as server:
            client = client_for(f"http://127.0.0.1:{server.port}")
            try:
                for _ in range(2):
                    status, headers, body = await client.post("/x", b"{}")
                    assert (status, body) == (200, b'{"a":1}')
                    assert headers["content-type"] == "application/json"
                assert client.connections_opened == 2
            finally:
                await client.close()

    run(main())


def test_interim_1xx_is_skipped(run: Runner) -> None:
    async def continue_first(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawServer, _: int
    ) -> None:
        while await read_request(reader, state) is not None:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"done"))
            await writer.drain()

    async def main() -> None:
        async with raw_server(continue_first) as server:
            client = client_for(f"http://127.0.0.1:{server.port}")
            try:
                for _ in range(2):
                    assert (await client.post("/x", b"{}"))[::2] == (200, b"done")
                assert client.connections_opened == 1
            finally:
                await client.close()

    run(main())


@pytest.mark.parametrize("reply", [b"SSH-2.0-OpenSSH_9.6\r\n", b"HTTP/1.1 abc\r\n\r\n"])
def test_garbage_reply_is_a_connection_error(run: Runner, reply: bytes) -> None:
    async def garbage(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawServer, _: int
    ) -> None:
        await read_request(reader, state)
        writer.write(reply)
        await writer.drain()
        await asyncio.sleep(0.5)

    async def main() -> None:
        async with raw_server(garbage) as server:
            client = client_for(f"http://127.0.0.1:{server.port}")
            try:
                with pytest.raises(ConnectionError, match="malformed HTTP"):
                    await client.post("/x", b"{}")
            finally:
                await client.close()

    run(main())


def test_response_too_large(run: Runner) -> None:
    async def main() -> None:
        async with raw_server(keep_alive_ok) as server:
            client = client_for(f"http://127.0.0.1:{server.port}", max_response=4)
            try:
                with pytest.raises(ConnectionError, match="larger than 4 bytes"):
                    await client.post("/x", b"{}")
            finally:
                await client.close()

    run(main())


def test_connection_refused(run: Runner) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens on it once closed

    async def main() -> None:
        client = client_for(f"http://127.0.0.1:{port}")
        with pytest.raises(ConnectionError, match="cannot connect"):
            await client.post("/x", b"{}")
        await client.close()

    run(main())


def test_max_idle_and_close(run: Runner) -> None:
    async def main() -> None:
        async with raw_server(keep_alive_ok) as server:
            client = client_for(f"http://127.0.0.1:{server.port}", max_idle=2)
            results = await asyncio.gather(*(client.post("/x", b"{}") for _ in range(5)))
            assert all(status == 200 for status, _, _ in results)
            assert client.connections_opened == 5
            assert len(client._idle) == 2
            await client.close()
            assert not client._idle and not client._all
            with pytest.raises(ConnectionError, match="closed"):
                await client.post("/x", b"{}")

    run(main())


def test_bad_configuration() -> None:
    with pytest.raises(ValueError):
        FastHttpClient("ftp://x", headers={}, timeout=1)
    with pytest.raises(ValueError):
        FastHttpClient("http://x", headers={"X-Bad": "a\r\nInjected: 1"}, timeout=1)

    async def main() -> None:
        client = FastHttpClient("http://x", headers={}, timeout=1)
        with pytest.raises(ValueError):
            await client.post("http://elsewhere/v1", b"{}")

    asyncio.run(main())


# -- HttpProvider on top ----------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["fast", "aiohttp"])
def test_provider_attempts(run: Runner, sim: SimHandle, transport: str) -> None:
    upstream = UpstreamConfig(name="sim", url=sim.url, timeout=0.3, client=transport)
    provider = OpenAIProvider(upstream)

    async def main() -> list[Attempt]:
        try:
            attempts = [await provider.send("/v1/chat/completions", CHAT)]
            kind = type(provider._client)
            sim.configure(rate_429=1.0, retry_after_s=2)
            attempts.append(await provider.send("/v1/chat/completions", CHAT))
            sim.configure(rate_429=0.0, rate_drop=1.0)
            attempts.append(await provider.send("/v1/chat/completions", CHAT))
            sim.configure(rate_drop=0.0, rate_slow=1.0, slow_ms=2000)
            attempts.append(await provider.send("/v1/chat/completions", CHAT))
            assert kind is (AiohttpTransport if transport == "aiohttp" else FastHttpClient)
            return attempts
        finally:
            await provider.close()

    ok_, limited, dropped, slow = run(main())
    assert ok_.status == 200 and ok_.request_id and ok_.retry_after is None
    assert orjson.loads(ok_.body)["object"] == "chat.completion"
    assert limited.status == 429 and limited.retry_after == {
        "retry-after": "2",
        "retry-after-ms": "2000",
    }
    assert (dropped.status, dropped.kind) == (None, "connect")
    assert (slow.status, slow.kind) == (None, "timeout")
