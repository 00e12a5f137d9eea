"""Real servers for tests: the batchgate app with its worker on a real socket, in a thread."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import uvicorn

from batchgate.api import Runtime, create_app
from batchgate.config import Config, Limits, single_upstream
from batchgate.engine.retry import RetryPolicy
from batchgate.engine.worker import Worker, WorkerOptions
from batchgate.service import Service
from batchgate.storage.blobs import BlobStore
from batchgate.storage.sql import SqlStore, open_store

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_retry_after=0.05)
TEST_WORKER = WorkerOptions(lease_ttl=5.0, poll_interval=0.05, retry=FAST_RETRY)
TERMINAL = {"completed", "failed", "expired", "cancelled"}


@dataclass
class ServerHandle:
    url: str  # http://127.0.0.1:PORT (no /v1)
    store: SqlStore
    blobs: BlobStore
    runtime: Runtime
    _server: uvicorn.Server
    _thread: threading.Thread
    clients: list[Any] = field(default_factory=list)

    def openai(self, **kwargs: Any) -> openai.OpenAI:
        client = openai.OpenAI(
            base_url=self.url + "/v1", api_key="test-key", max_retries=0, **kwargs
        )
        self.clients.append(client)
        return client

    def http(self) -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=30)
        self.clients.append(client)
        return client

    def wait_for(self, batch_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Poll the store until the batch ends; its fields as a dict (tests index them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.store.get_batch(batch_id)
            if row and row.ended:
                return dataclasses.asdict(row)
            time.sleep(0.05)
        raise AssertionError(f"batch {batch_id} did not end in {timeout}s: {row}")

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self.store.close()


@contextmanager
def run_server(
    database_url: str,
    data_dir: Path,
    *,
    config: Config | None = None,
    upstream_url: str | None = None,
    worker: bool = True,
    options: WorkerOptions = TEST_WORKER,
    limits: Limits | None = None,
) -> Iterator[ServerHandle]:
    """The real app + in-process worker on 127.0.0.1:<free port>, stopped on exit."""
    if config is None:
        assert upstream_url is not None
        config = single_upstream(upstream_url, concurrency=16, timeout=5.0)
    if limits is not None:
        config = Config(config.upstreams, config.aliases, config.default_upstream, limits)
    store = open_store(database_url)
    blobs = BlobStore(data_dir / "blobs")
    inproc = Worker(store, blobs, config, options) if worker else None
    service = Service(store, blobs, config, wake=inproc.wake if inproc else lambda: None)
    runtime = Runtime(service, inproc)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), log_level="warning", lifespan="on", loop="asyncio")
    )

    def serve() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=serve, daemon=True, name=f"server-{port}")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    handle = ServerHandle(f"http://127.0.0.1:{port}", store, blobs, runtime, server, thread)
    try:
        yield handle
    finally:
        handle.stop()
