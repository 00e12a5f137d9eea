"""The app factory: routes of every dialect, error handlers, request ids, API keys, the
in-process worker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batchgate import ids
from batchgate.api.anthropic.routes import routes as anthropic_routes
from batchgate.api.auth import Authenticate
from batchgate.api.errors import HANDLERS, error_response, on_client_error
from batchgate.api.jobs.routes import routes as jobs_routes
from batchgate.api.openai.routes import routes as openai_routes
from batchgate.api.usage import routes as usage_routes
from batchgate.errors import InvalidRequest
from batchgate.service import Service


class Worker(Protocol):
    """What the app needs of an in-process worker (``engine.worker.Worker``): the API sees
    the service, not the engine."""

    async def run(self, stop: asyncio.Event) -> None: ...

    def wake(self) -> None: ...


@dataclass
class Runtime:
    """What the app needs, built once by the CLI (or a test) and passed in."""

    service: Service
    # Run in-process when set; give the service its ``wake`` so a create or a cancel wakes it.
    worker: Worker | None = None
    public_url: str | None = None
    # With no API key ever made, serve everyone as tenant "" (the CLI allows it on loopback
    # only); ``open_after_revoke`` also once every key made was revoked (``serve --open``).
    allow_open: bool = True
    open_after_revoke: bool = False
    _stop: asyncio.Event = field(default_factory=asyncio.Event)


class RequestId:
    """Every answer carries ``x-request-id`` (read by the openai SDK) and ``request-id``
    (read by the anthropic SDK), with the same value."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ids.request_id()
        scope.setdefault("state", {})["request_id"] = rid
        raw = rid.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-request-id", raw), (b"request-id", raw)]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_id)


class RefuseNul:
    """A NUL character (``%00``) in the path or the query string is a 400 in the dialect's
    envelope: no id, cursor or parameter may hold one (PostgreSQL text cannot), and refusing
    it here keeps every route from reaching the store with it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"")
            if "\x00" in scope["path"] or b"\x00" in query or b"%00" in query:
                exc = InvalidRequest(
                    "The request URL contains a NUL character (%00), which no id or parameter "
                    "may hold.",
                    code="invalid_value",
                )
                response = await on_client_error(Request(scope, receive), exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def health(request: Request) -> Response:
    service: Service = request.app.state.runtime.service
    try:
        await service.ping()
    except Exception as exc:  # any failure to reach the store is "unhealthy"
        return error_response(request, 503, f"store unreachable: {exc}", type="server_error")
    return JSONResponse({"status": "ok"})


def create_app(runtime: Runtime) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = None
        if runtime.worker is not None:
            runtime._stop = asyncio.Event()
            task = asyncio.create_task(runtime.worker.run(runtime._stop))
        yield
        if task is not None:
            runtime._stop.set()
            await task

    served = [*openai_routes(), *anthropic_routes(), *jobs_routes(), *usage_routes()]
    app = Starlette(
        routes=[Route("/health", health), *served],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.add_middleware(
        Authenticate, service=runtime.service, allow_open=runtime.allow_open,
        open_after_revoke=runtime.open_after_revoke,
    )  # fmt: skip
    app.add_middleware(RefuseNul)
    app.add_middleware(RequestId)  # outermost: a refused request has its id too
    return app
