"""OpenAI error envelopes (``{"error": {message, type, param, code}}``) and the exception that
request validation raises to produce one."""

from __future__ import annotations

import sys
import traceback

import orjson


def error_body(
    message: str,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> bytes:
    """The JSON bytes of an OpenAI error envelope."""
    return orjson.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    )


class InvalidRequest(Exception):
    """A request the simulated upstream rejects with a 4xx (a real answer, not a fault)."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(message, "invalid_request_error", param, code)


INVALID_JSON = error_body(
    "We could not parse the JSON body of your request. (The simulator expects a JSON object.)"
)
RATE_LIMITED = error_body(
    "Rate limit reached for requests (simulated).", "rate_limit_error", None, "rate_limit_exceeded"
)
SERVER_ERROR = error_body(
    "The server had an error while processing your request (simulated).", "server_error"
)
UNAVAILABLE = error_body(
    "The engine is currently overloaded, please try again later (simulated).",
    "server_error",
    None,
    "service_unavailable",
)


def overloaded_body(max_in_flight: int, retry_after_s: float) -> bytes:
    """The 429 body sent when more than ``max_in_flight`` requests would be in flight."""
    return error_body(
        f"The simulated server is overloaded ({max_in_flight} requests in flight); "
        f"retry after {retry_after_s:g} seconds.",
        "rate_limit_error",
        None,
        "overloaded",
    )


def not_found_body(method: str, path: str) -> bytes:
    """The 404 body for a path the simulator does not serve."""
    return error_body(f"Unknown request URL: {method} {path}.", code="unknown_url")


def internal_error(exc: BaseException) -> bytes:
    """The 500 body for a bug in the simulator itself; the traceback goes to stderr."""
    traceback.print_exception(exc, file=sys.stderr)
    return error_body(
        f"Simulator internal error (a bug, not an injected fault): {exc!r}",
        "server_error",
        code="simulator_bug",
    )
