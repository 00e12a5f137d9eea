"""A minimal HTTP/1.1 server connection on asyncio ``Protocol`` + ``httptools``: keep-alive,
pipelining (replies in order), ``Expect: 100-continue`` and delayed replies via timers. Of the
request headers only ``Expect`` and the two that carry an API key (``Authorization``,
``x-api-key``, for the RPM limit) are read."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import deque
from typing import NamedTuple, cast

import httptools

from batchgate.sim import envelopes
from batchgate.sim.dialects import ANTHROPIC_TOO_LARGE
from batchgate.sim.server import ANTHROPIC_ENDPOINTS, Reply, SimApp

MAX_BODY_BYTES = 64 * 1024 * 1024

_STATUS_LINES = {
    code: f"HTTP/1.1 {code} {reason}\r\n".encode()
    for code, reason in (
        (100, "Continue"),
        (200, "OK"),
        (400, "Bad Request"),
        (404, "Not Found"),
        (413, "Content Too Large"),
        (429, "Too Many Requests"),
        (500, "Internal Server Error"),
        (503, "Service Unavailable"),
        (529, "Site Overloaded"),
    )
}
# Request ids: a random per-process base plus a counter is unique and far cheaper than
# random bytes per reply.
_request_ids = itertools.count(int.from_bytes(os.urandom(6), "big") << 16)
_TOO_LARGE = envelopes.error_body("Request body too large.", code="request_too_large")
_BAD_REQUEST = envelopes.error_body("Malformed HTTP request.")


_HEAD = b"%scontent-type: application/json\r\ncontent-length: %d\r\nx-request-id: req_%016x\r\n"
# Anthropic's replies carry the id as ``request-id`` too.
_ANTHROPIC_HEAD = _HEAD + b"request-id: req_%016x\r\n"


class _Request(NamedTuple):
    method: bytes
    path: str
    body: bytes
    keep_alive: bool
    too_large: bool
    authorization: bytes
    api_key: bytes


def encode(
    status: int,
    body: bytes,
    headers: bytes = b"",
    keep_alive: bool = True,
    anthropic: bool = False,
) -> bytes:
    """The bytes of one HTTP/1.1 response with a JSON body; ``headers`` are extra header
    lines, each ending in CRLF; ``anthropic`` adds a ``request-id`` header equal to
    ``x-request-id``."""
    status_line = _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Status\r\n".encode()
    if anthropic:
        request_id = next(_request_ids)
        head = _ANTHROPIC_HEAD % (status_line, len(body), request_id, request_id)
    else:
        head = _HEAD % (status_line, len(body), next(_request_ids))
    if keep_alive:
        return b"".join((head, headers, b"\r\n", body))
    return b"".join((head, headers, b"connection: close\r\n\r\n", body))


class HttpConnection(asyncio.Protocol):
    """One client connection. Requests are answered strictly in order: while a delayed reply
    is pending, later pipelined requests queue (and reading pauses) until it is written. A
    reply without delay is written synchronously from ``data_received`` (no task, no timer),
    which is what keeps the simulator fast."""

    def __init__(
        self,
        app: SimApp,
        loop: asyncio.AbstractEventLoop,
        connections: set[HttpConnection],
    ) -> None:
        self._app = app
        self._loop = loop
        self._connections = connections
        self._paused = False
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._body: list[bytes] = []
        self._body_size = 0
        self._expect_continue = False
        self._authorization = b""
        self._api_key = b""
        self._queue: deque[_Request] = deque()
        self._pending: tuple[Reply, bool] | None = None  # the delayed reply + keep-alive
        self._timer: asyncio.TimerHandle | None = None

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._connections.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.close()
        except httptools.HttpParserCallbackError as exc:
            # A bug in the simulator, not the client's fault: say so loudly, answer 500.
            self._write(Reply(500, envelopes.internal_error(exc.__context__ or exc)), False)
        except httptools.HttpParserError:
            self._write(Reply(400, _BAD_REQUEST), keep_alive=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._transport = None
        self._queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending is not None:
            reply, _ = self._pending
            self._pending = None
            if reply.slot:
                self._app.finish(reply, sent=False)

    def close(self) -> None:
        """Close the connection (buffered output is flushed first)."""
        if self._transport is not None:
            self._transport.close()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []
        self._body_size = 0
        self._expect_continue = False
        self._authorization = b""
        self._api_key = b""

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # Called once per header (httptools joins one split across reads); the length test
        # first skips the lower() of every header but the three read, on the hot path.
        size = len(name)
        if size == 13:
            if name.lower() == b"authorization":
                self._authorization = value
        elif size == 9:
            if name.lower() == b"x-api-key":
                self._api_key = value
        elif size == 6 and name.lower() == b"expect" and value.lower() == b"100-continue":
            self._expect_continue = True

    def on_headers_complete(self) -> None:
        # Only promise "continue" when we will read the body now, not behind a queue.
        if self._expect_continue and self._pending is None and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size <= MAX_BODY_BYTES:
            self._body.append(body)

    def on_message_complete(self) -> None:
        path = self._url.partition(b"?")[0].decode("latin-1")
        body = b"".join(self._body)
        self._body = []
        too_large = self._body_size > MAX_BODY_BYTES
        keep_alive = self._parser.should_keep_alive() and not too_large
        request = _Request(
            self._parser.get_method(),
            path,
            body,
            keep_alive,
            too_large,
            self._authorization,
            self._api_key,
        )
        if self._pending is not None or self._queue:
            self._queue.append(request)
            if self._transport is not None and not self._paused:
                self._paused = True
                self._transport.pause_reading()
            return
        self._dispatch(request)

    # replies

    def _dispatch(self, request: _Request) -> None:
        if self._transport is None:
            return
        if request.too_large:
            if request.path in ANTHROPIC_ENDPOINTS:
                self._write(Reply(413, ANTHROPIC_TOO_LARGE, anthropic=True), keep_alive=False)
            else:
                self._write(Reply(413, _TOO_LARGE), keep_alive=False)
            return
        reply = self._app.handle(
            request.method, request.path, request.body, request.authorization, request.api_key
        )
        if reply is None:  # the drop fault: close with no response at all
            self.close()
            self._transport = None
            return
        if reply.delay <= 0.0:
            self._write(reply, request.keep_alive)
            return
        self._pending = (reply, request.keep_alive)
        self._timer = self._loop.call_later(reply.delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        pending = self._pending
        self._pending = None
        if pending is not None:
            self._write(*pending)
        while self._queue and self._pending is None and self._transport is not None:
            self._dispatch(self._queue.popleft())
        if self._paused and not self._queue and self._pending is None and self._transport:
            self._paused = False
            self._transport.resume_reading()

    def _write(self, reply: Reply, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            if reply.slot:
                self._app.finish(reply, sent=False)
            return
        transport.write(
            encode(reply.status, reply.body, reply.headers, keep_alive, reply.anthropic)
        )
        if reply.slot:
            self._app.finish(reply, sent=True)
        if not keep_alive:
            transport.close()
            self._transport = None
