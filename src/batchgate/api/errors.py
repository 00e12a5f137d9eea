"""Rendering errors at the edge: one mapping from exception to each dialect's envelope."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from batchgate import ids
from batchgate.dialects import ApiError, dialect_of_path
from batchgate.errors import ClientError, Conflict, StoreUnavailable

log = logging.getLogger("batchgate.api")

_HTTP_TYPES = {401: "authentication_error", 404: "not_found_error", 405: "invalid_request_error"}


def error_response(
    request: Request, status: int, message: str, *, type: str = "invalid_request_error",
    param: str | None = None, code: str | None = None,
) -> JSONResponse:  # fmt: skip
    """The error in the envelope of the dialect the path belongs to (``dialect_of_path``)."""
    error = ApiError(status, message, type, param, code, getattr(request.state, "request_id", None))
    body = dialect_of_path(request.url.path).envelope(error)
    headers = {"x-should-retry": "false"} if status == 409 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def on_client_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ClientError)
    return error_response(
        request, exc.status, exc.message, type=exc.type, param=exc.param, code=exc.code
    )


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if exc.status_code != 404 else "Unknown request URL."
    kind = _HTTP_TYPES.get(exc.status_code, "invalid_request_error")
    code = "not_found" if exc.status_code == 404 else None
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        message = f"Method {request.method} is not allowed here; use {', '.join(allowed)}."
        response = error_response(request, 405, message, type=kind, code="method_not_allowed")
        response.headers["allow"] = ", ".join(allowed)  # RFC 9110 §15.5.6
        return response
    return error_response(request, exc.status_code, str(message), type=kind, code=code)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (routes are one per method, so the one
    Starlette tried names only its own)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET", "type": "http"})
        if match != Match.NONE and isinstance(route, Route):
            methods |= route.methods or set()
    return sorted(methods)


async def on_store_down(request: Request, exc: Exception) -> Response:
    log.error("store_unavailable error=%s", exc)
    message = "The database is unavailable; try again shortly."
    return error_response(request, 503, message, type="server_error")


async def on_disconnect(request: Request, exc: Exception) -> Response:
    """The client went away mid-request (an upload cut short): nobody reads an answer, and it
    is the client's doing, not ours: an info line, no traceback."""
    log.info("client_disconnected path=%s", request.url.path)
    return error_response(request, 400, "The client disconnected before the request was read.")


async def on_crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error path=%s", request.url.path, exc_info=exc)
    response = error_response(request, 500, "Internal server error.", type="server_error")
    # Starlette runs this handler outside the RequestId middleware: add the headers here.
    rid = getattr(request.state, "request_id", None) or ids.request_id()
    response.headers["x-request-id"] = response.headers["request-id"] = rid
    return response


HANDLERS = {
    HTTPException: on_http_error,
    ClientError: on_client_error,
    Conflict: on_client_error,
    StoreUnavailable: on_store_down,
    ClientDisconnect: on_disconnect,
    Exception: on_crash,
}
