"""Rendering errors at the edge: one mapping from exception to each dialect's envelope."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from batchgate import ids
from batchgate.errors import ClientError, Conflict, StoreUnavailable

log = logging.getLogger("batchgate.api")

_HTTP_TYPES = {401: "authentication_error", 404: "not_found_error", 405: "invalid_request_error"}


def openai_error(
    status: int, message: str, *, type: str = "invalid_request_error",
    param: str | None = None, code: str | None = None,
) -> JSONResponse:  # fmt: skip
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    headers = {"x-should-retry": "false"} if status == 409 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def on_client_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ClientError)
    return openai_error(exc.status, exc.message, type=exc.type, param=exc.param, code=exc.code)


async def on_http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if exc.status_code != 404 else "Unknown request URL."
    kind = _HTTP_TYPES.get(exc.status_code, "invalid_request_error")
    code = "not_found" if exc.status_code == 404 else None
    return openai_error(exc.status_code, str(message), type=kind, code=code)


async def on_store_down(_request: Request, exc: Exception) -> Response:
    log.error("store_unavailable error=%s", exc)
    return openai_error(503, "The database is unavailable; try again shortly.", type="server_error")


async def on_crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error path=%s", request.url.path, exc_info=exc)
    response = openai_error(500, "Internal server error.", type="server_error")
    # Starlette runs this handler outside the RequestId middleware: add the header here.
    response.headers["x-request-id"] = ids.request_id()
    return response


HANDLERS = {
    HTTPException: on_http_error,
    ClientError: on_client_error,
    Conflict: on_client_error,
    StoreUnavailable: on_store_down,
    Exception: on_crash,
}
