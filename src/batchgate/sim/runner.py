"""Running the simulator: ``serve`` on the current loop, ``run_simulator`` as a blocking
process entry point, and ``start_in_thread`` for tests (a server on its own loop and thread)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import signal
import ssl as _ssl
import sys
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from batchgate.sim.config import SimConfig
from batchgate.sim.protocol import HttpConnection
from batchgate.sim.server import SimApp

T = TypeVar("T")
_CALL_TIMEOUT_S = 10.0

try:  # uvloop is there on Linux/macOS (via uvicorn[standard]); plain asyncio elsewhere
    import uvloop

    _new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
except ImportError:  # pragma: no cover - platform dependent
    _new_loop = asyncio.new_event_loop


class SimServer:
    """A listening simulator on the running loop: ``app``, ``port``, ``close()``."""

    def __init__(
        self, app: SimApp, server: asyncio.Server, connections: set[HttpConnection]
    ) -> None:
        self.app = app
        self._server = server
        self._connections = connections
        self.port: int = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and close every open connection."""
        self._server.close()
        for connection in list(self._connections):
            connection.close()
        await self._server.wait_closed()
        await asyncio.sleep(0)  # let connection_lost callbacks run before the loop stops


async def serve(
    app: SimApp, host: str = "127.0.0.1", port: int = 0, ssl: _ssl.SSLContext | None = None
) -> SimServer:
    """Start serving ``app`` on ``host:port`` (0 = a free port) on the running loop, over TLS
    with ``ssl`` (tests of https upstreams). With a host that resolves to several addresses,
    ``port`` reports the first socket's port."""
    loop = asyncio.get_running_loop()
    connections: set[HttpConnection] = set()
    server = await loop.create_server(
        lambda: HttpConnection(app, loop, connections), host, port, backlog=4096, ssl=ssl
    )
    return SimServer(app, server, connections)


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def run_simulator(config: SimConfig, host: str = "127.0.0.1", port: int = 8001) -> None:
    """Serve until SIGINT/SIGTERM, on uvloop where available. Prints one line,
    ``simulate listening on http://HOST:PORT`` (flushed), once the socket is listening."""
    if _new_loop is asyncio.new_event_loop:  # pragma: no cover - no uvloop
        asyncio.run(_serve_until_signal(config, host, port))
    else:
        uvloop.run(_serve_until_signal(config, host, port))


async def _serve_until_signal(config: SimConfig, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await serve(SimApp(config), host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # No signal handlers on Windows loops: Ctrl+C still ends the process there.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    shown = f"[{host}]" if ":" in host else host
    sys.stdout.write(f"simulate listening on http://{shown}:{server.port}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await server.close()


class SimHandle:
    """A simulator running on its own loop in a daemon thread (see ``start_in_thread``).
    Methods are thread-safe: they run on the server's loop and wait for the result."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread,
        server: SimServer,
        host: str,
        scheme: str = "http",
    ) -> None:
        self._loop = loop
        self._thread = thread
        self._server = server
        self.port = server.port
        self.base_url = f"{scheme}://{_url_host(host)}:{server.port}"
        self.url = self.base_url + "/v1"  # what an OpenAI client takes as base_url
        self._stopped = False

    def _call(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return self._run(call())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._stopped:
            coro.close()
            raise RuntimeError("the simulator has been stopped")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_CALL_TIMEOUT_S)

    @property
    def config(self) -> SimConfig:
        """A copy of the config in force (change it with ``configure``)."""
        return self._call(lambda: dataclasses.replace(self._server.app.config))

    def stats(self) -> dict[str, Any]:
        """The ``/_sim/stats`` counters."""
        return self._call(self._server.app.stats.snapshot)

    def configure(self, **changes: Any) -> SimConfig:
        """Apply SimConfig field changes live and return the new config; raises ValueError
        (nothing changed) on an unknown field or a bad value."""
        return self._call(lambda: self._server.app.configure(changes))

    def reset(self) -> None:
        """Zero the counters and the fault attempt memory."""
        self._call(self._server.app.reset)

    def stop(self) -> None:
        """Close the server and its connections and end the thread (idempotent)."""
        if self._stopped:
            return
        self._run(self._server.close())
        self._stopped = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_CALL_TIMEOUT_S)

    def __enter__(self) -> SimHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_in_thread(
    config: SimConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl: _ssl.SSLContext | None = None,
) -> SimHandle:
    """Start a simulator on a new event loop (uvloop where available) in a daemon thread and
    return once it is listening; ``port`` 0 picks a free port; with ``ssl`` it serves https.
    Stop it with ``.stop()`` or use the handle as a context manager. Raises OSError if the
    address cannot be bound."""
    loop = _new_loop()
    ready: concurrent.futures.Future[SimServer] = concurrent.futures.Future()
    app = SimApp(config if config is not None else SimConfig())

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(serve(app, host, port, ssl))
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(server)
        try:
            loop.run_forever()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="batchgate-sim", daemon=True)
    thread.start()
    server = ready.result(_CALL_TIMEOUT_S)
    return SimHandle(loop, thread, server, host, "https" if ssl else "http")
