"""Fixtures for the SDK tests: one ``client`` fixture that is the blocking Client or the
AsyncClient driven through ``Bridge``, so every live test runs against both."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from batchgate.api import Runtime
from batchgate.client import AsyncClient, Client
from batchgate.config import single_upstream
from batchgate.engine.worker import Worker
from batchgate.service import Service
from batchgate.sim import SimHandle
from batchgate.storage.blobs import BlobStore
from batchgate.storage.sql import open_store
from tests.helpers.servers import TEST_WORKER, ServerHandle

FAST = {"poll_interval": 0.02, "timeout": 30.0}  # wait_for in tests


class Bridge:
    """An AsyncClient (or one of its resources) called from blocking test code: every
    coroutine runs on one event loop, every async iterator is pulled item by item on it."""

    def __init__(self, target: Any, runner: asyncio.Runner) -> None:
        self._target, self._runner = target, runner

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return Bridge(value, self._runner) if _is_resource(value) else value

        def call(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            if inspect.iscoroutine(result):
                return self._runner.run(result)
            if isinstance(result, AsyncIterator):
                return self._pull(result)
            return result

        return call

    def _pull(self, items: AsyncIterator[Any]) -> Iterator[Any]:
        async def step() -> Any:
            return await anext(items)

        while True:
            try:
                yield self._runner.run(step())
            except StopAsyncIteration:
                return


def _is_resource(value: Any) -> bool:
    return type(value).__module__ == "batchgate.client._resources"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sync", "async"])
def connect(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``connect(url, **kwargs)``: a Client, or a bridged AsyncClient; closed after the test."""
    closers: list[Callable[[], None]] = []
    runner = asyncio.Runner()

    def make(url: str, **kwargs: Any) -> Any:
        if request.param == "sync":
            client = Client(url, **kwargs)
            closers.append(client.close)
            return client
        aclient = AsyncClient(url, **kwargs)
        closers.append(lambda: runner.run(aclient.aclose()))
        return Bridge(aclient, runner)

    yield make
    for close in closers:
        close()
    runner.close()


@pytest.fixture
def client(connect: Callable[..., Any], server: ServerHandle) -> Any:
    """The SDK pointed at the live test server (sync and async in turn)."""
    return connect(server.url)


@pytest.fixture
def runtime(tmp_path: Path, sim: SimHandle) -> Iterator[Runtime]:
    """A server's runtime with its worker, for in-process apps (no socket)."""
    config = single_upstream(sim.url, concurrency=16, timeout=5.0)
    store = open_store(f"sqlite:///{tmp_path / 'inproc.sqlite'}")
    blobs = BlobStore(tmp_path / "inproc-blobs")
    worker = Worker(store, blobs, config, TEST_WORKER)
    rt = Runtime(Service(store, blobs, config, wake=worker.wake), worker)
    yield rt
    store.close()


def chat(n: int, prefix: str = "r", **line: Any) -> list[dict[str, Any]]:
    """``n`` chat requests without method or url (the client fills them in)."""
    return [
        {
            "custom_id": f"{prefix}{i}",
            "body": {"model": "sim-model", "messages": [{"role": "user", "content": f"hi {i}"}]},
            **line,
        }
        for i in range(n)
    ]


def messages(n: int, prefix: str = "m") -> list[dict[str, Any]]:
    params = {"model": "sim-model", "max_tokens": 16}
    return [
        {"custom_id": f"{prefix}{i}", "params": {**params, "messages": [_user(f"hello {i}")]}}
        for i in range(n)
    ]


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}
