"""The two senders: each turns sans-IO calls and flows into httpx requests, one blocking, one
async. Where the server is, the auth headers and how transport failures read live here once."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from batchgate.client import _ops
from batchgate.client._bodies import Body
from batchgate.client._flows import (
    Answerable,
    Chunks,
    Collected,
    Cursor,
    Flow,
    ResultPages,
    Sleep,
    Step,
    Streamable,
)
from batchgate.client.errors import APIConnectionError, APITimeoutError

T = TypeVar("T")
R = TypeVar("R")
DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV, KEY_ENV = "BATCHGATE_URL", "BATCHGATE_API_KEY"


def server_root(url: str) -> str:
    """``http://host:port`` from a URL that may end in ``/`` or ``/v1``."""
    return url.strip().rstrip("/").removesuffix("/v1").rstrip("/")


@dataclass(frozen=True)
class Settings:
    root: str
    headers: Mapping[str, str]

    @classmethod
    def resolve(
        cls,
        base_url: str | None,
        api_key: str | None,
        headers: Mapping[str, str] | None,
        http_client: httpx.Client | httpx.AsyncClient | None,
        transport: object = None,
    ) -> Settings:
        """``base_url``, else a given client's own base URL, else $BATCHGATE_URL, else the
        default; ``api_key``, else $BATCHGATE_API_KEY, sent in both dialects' headers.
        A ``transport`` and an ``http_client`` together are a ValueError."""
        if transport is not None and http_client is not None:
            raise ValueError("Give `transport` or `http_client`, not both.")
        if not base_url and http_client is not None and http_client.base_url.host:
            base_url = str(http_client.base_url)
        root = server_root(base_url or os.environ.get(URL_ENV) or DEFAULT_URL)
        key = api_key if api_key is not None else os.environ.get(KEY_ENV)
        auth = {"authorization": f"Bearer {key}", "x-api-key": key} if key else {}
        return cls(root, {"user-agent": "batchgate-client", **auth, **(headers or {})})

    def request(self, call: _ops.Call[Any], content: Any) -> dict[str, Any]:
        """The keyword arguments of ``httpx.Client.request`` / ``.stream`` for ``call``."""
        headers = {**self.headers, "accept": call.accept}
        if call.body is not None:
            headers["content-type"] = call.body.content_type
            if call.body.length is not None:
                headers["content-length"] = str(call.body.length)
        return {
            "method": call.method, "url": self.root + call.path, "params": call.params or None,
            "json": call.json, "content": content, "headers": headers,
        }  # fmt: skip


@contextmanager
def translated(root: str, call: _ops.Call[Any]) -> Iterator[None]:
    """httpx's transport failures as this client's errors, naming the server."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise APITimeoutError(root, _reason(call, exc)) from exc
    except httpx.TransportError as exc:
        raise APIConnectionError(root, _reason(call, exc)) from exc


def _reason(call: _ops.Call[Any], exc: Exception) -> str:
    return f"{call.method} {call.path}: {type(exc).__name__}: {exc}"


def _stream_error(response: httpx.Response) -> None:
    if response.is_error:
        raise _ops.status_error(response)


async def _async_chunks(body: Body) -> AsyncIterator[bytes]:
    for chunk in body.chunks():  # small reads from disk or memory: fine on the event loop
        yield chunk


class SyncSender:
    def __init__(self, http: httpx.Client, settings: Settings, *, owned: bool) -> None:
        self.http, self.settings, self._owned = http, settings, owned

    def close(self) -> None:
        if self._owned:
            self.http.close()

    def _args(self, call: _ops.Call[Any]) -> dict[str, Any]:
        return self.settings.request(call, call.body.chunks() if call.body else None)

    # What the resource methods (see _shell) call: the typed results are theirs.
    def answer(self, build: Callable[[], Answerable[Any]]) -> Any:
        todo = build()
        if isinstance(todo, _ops.Call):
            return self.call(todo)
        if isinstance(todo, Collected):
            return list(self.results(todo.pages))
        return self.run(todo)

    def iterate(self, build: Callable[[], Streamable[Any]]) -> Iterator[Any]:
        source = build()
        if isinstance(source, Chunks):
            return self.chunks(source.call)
        return self.paginate(source) if isinstance(source, Cursor) else self.results(source)

    def call(self, call: _ops.Call[T]) -> T:
        with translated(self.settings.root, call):
            response = self.http.request(**self._args(call))
        return _ops.answer(call, response)

    @contextmanager
    def stream(self, call: _ops.Call[Any]) -> Iterator[httpx.Response]:
        with translated(self.settings.root, call), self.http.stream(**self._args(call)) as resp:
            if resp.is_error:
                resp.read()
            _stream_error(resp)
            yield resp

    def run(self, flow: Flow[T]) -> T:
        answer: Any = None
        try:
            while True:
                answer = self._do(flow.send(answer))
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _do(self, step: Step) -> Any:
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        return self.call(step)

    def paginate(self, cursor: Cursor[T]) -> Iterator[T]:
        while (call := cursor.next_call()) is not None:
            yield from cursor.turn(self.call(call))

    def chunks(self, call: _ops.Call[Any]) -> Iterator[bytes]:
        with self.stream(call) as response:
            yield from response.iter_bytes()

    def results(self, pages: ResultPages[R]) -> Iterator[R]:
        while (call := pages.next_call()) is not None:
            with self.stream(call) as response:
                for chunk in response.iter_bytes():
                    yield from pages.feed(chunk)
                yield from pages.end_page(response.headers)
        pages.finish()


class AsyncSender:
    def __init__(self, http: httpx.AsyncClient, settings: Settings, *, owned: bool) -> None:
        self.http, self.settings, self._owned = http, settings, owned

    async def aclose(self) -> None:
        if self._owned:
            await self.http.aclose()

    def _args(self, call: _ops.Call[Any]) -> dict[str, Any]:
        return self.settings.request(call, _async_chunks(call.body) if call.body else None)

    async def answer(self, build: Callable[[], Answerable[Any]]) -> Any:
        todo = build()  # here, not before: a call's arguments fail once it is awaited
        if isinstance(todo, _ops.Call):
            return await self.call(todo)
        if isinstance(todo, Collected):
            return [item async for item in self.results(todo.pages)]
        return await self.run(todo)

    def iterate(self, build: Callable[[], Streamable[Any]]) -> AsyncIterator[Any]:
        source = build()
        if isinstance(source, Cursor):
            return self.paginate(source)
        return self.chunks(source.call) if isinstance(source, Chunks) else self.results(source)

    async def call(self, call: _ops.Call[T]) -> T:
        with translated(self.settings.root, call):
            response = await self.http.request(**self._args(call))
        return _ops.answer(call, response)

    @asynccontextmanager
    async def stream(self, call: _ops.Call[Any]) -> AsyncIterator[httpx.Response]:
        with translated(self.settings.root, call):
            async with self.http.stream(**self._args(call)) as resp:
                if resp.is_error:
                    await resp.aread()
                _stream_error(resp)
                yield resp

    async def run(self, flow: Flow[T]) -> T:
        answer: Any = None
        try:
            while True:
                answer = await self._do(flow.send(answer))
        except StopIteration as stop:
            result: T = stop.value
            return result

    async def _do(self, step: Step) -> Any:
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        return await self.call(step)

    async def paginate(self, cursor: Cursor[T]) -> AsyncIterator[T]:
        while (call := cursor.next_call()) is not None:
            for item in cursor.turn(await self.call(call)):
                yield item

    async def chunks(self, call: _ops.Call[Any]) -> AsyncIterator[bytes]:
        async with self.stream(call) as response:
            async for chunk in response.aiter_bytes():
                yield chunk

    async def results(self, pages: ResultPages[R]) -> AsyncIterator[R]:
        while (call := pages.next_call()) is not None:
            async with self.stream(call) as response:
                async for chunk in response.aiter_bytes():
                    for result in pages.feed(chunk):
                        yield result
                for result in pages.end_page(response.headers):
                    yield result
        pages.finish()
