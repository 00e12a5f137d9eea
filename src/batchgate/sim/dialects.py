"""The two APIs' error answers. A ``Dialect`` holds, pre-encoded, every error body one API
family sends (invalid JSON, each fault, overload) and renders 4xx and simulator-bug bodies:
OpenAI's ``{"error": {message, type, param, code}}`` for the ``/v1`` OpenAI endpoints, and
Anthropic's ``{"type": "error", "error": {type, message}}`` for ``/v1/messages``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from batchgate.sim import envelopes
from batchgate.sim.envelopes import InvalidRequest
from batchgate.sim.ratelimit import Decision, anthropic_headers, format_duration, openai_headers


@dataclass(frozen=True, slots=True)
class Dialect:
    """One API's error answers. ``anthropic`` marks replies that also carry Anthropic's
    ``request-id`` header; ``fault_529`` and ``overload`` are (status, body) pairs."""

    anthropic: bool
    invalid_json: bytes
    rate_limited: bytes
    server_error: bytes
    unavailable: bytes
    fault_529: tuple[int, bytes]
    overload: tuple[int, bytes]
    invalid: Callable[[InvalidRequest], bytes]
    internal: Callable[[BaseException], bytes]
    # The body of a request over the per-key RPM limit: (rpm_limit, seconds until retry).
    rpm_limited: Callable[[int, float], bytes]
    # The request-budget headers every answer carries while the RPM limit is on.
    rate_headers: Callable[[int, Decision], bytes]


def _openai_invalid(exc: InvalidRequest) -> bytes:
    return exc.body


def _openai_rpm_limited(limit: int, retry_after_s: float) -> bytes:
    return envelopes.error_body(
        "Rate limit reached for requests in organization org-simulated on requests per min "
        f"(RPM): Limit {limit}, Used {limit}, Requested 1. "
        f"Please try again in {format_duration(retry_after_s)}. (simulated)",
        "requests",
        None,
        "rate_limit_exceeded",
    )


def openai_dialect(max_in_flight: int, retry_after_s: float) -> Dialect:
    """OpenAI's answers. OpenAI-compatible servers never send 529, so the 529 fault is
    answered as the 503 fault; overload mode answers 429."""
    return Dialect(
        anthropic=False,
        invalid_json=envelopes.INVALID_JSON,
        rate_limited=envelopes.RATE_LIMITED,
        server_error=envelopes.SERVER_ERROR,
        unavailable=envelopes.UNAVAILABLE,
        fault_529=(503, envelopes.UNAVAILABLE),
        overload=(429, envelopes.overloaded_body(max_in_flight, retry_after_s)),
        invalid=_openai_invalid,
        internal=envelopes.internal_error,
        rpm_limited=_openai_rpm_limited,
        rate_headers=openai_headers,
    )


# Anthropic's error type for each status it answers with
# (https://docs.anthropic.com/en/api/errors).
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}


def anthropic_error_body(type_: str, message: str) -> bytes:
    """The JSON bytes of an Anthropic error envelope."""
    return orjson.dumps({"type": "error", "error": {"type": type_, "message": message}})


def _anthropic_invalid(exc: InvalidRequest) -> bytes:
    error_type = ANTHROPIC_ERROR_TYPES.get(exc.status, "invalid_request_error")
    return anthropic_error_body(error_type, str(exc))


def _anthropic_internal(exc: BaseException) -> bytes:
    envelopes.internal_error(exc)  # prints the traceback
    return anthropic_error_body(
        "api_error", f"Simulator internal error (a bug, not an injected fault): {exc!r}"
    )


def _anthropic_rpm_limited(limit: int, retry_after_s: float) -> bytes:
    return anthropic_error_body(
        "rate_limit_error",
        f"This request would exceed your organization's rate limit of {limit} requests per "
        f"minute; retry after {format_duration(retry_after_s)} (simulated).",
    )


ANTHROPIC_TOO_LARGE = anthropic_error_body(
    "request_too_large", "Request exceeds the maximum allowed number of bytes."
)


def anthropic_dialect(max_in_flight: int, retry_after_s: float) -> Dialect:
    """Anthropic's answers: 529 ``overloaded_error`` for the 529 fault and overload mode."""
    overloaded = anthropic_error_body(
        "overloaded_error",
        f"Overloaded: the simulated server has {max_in_flight} requests in flight; "
        f"retry after {retry_after_s:g} seconds.",
    )
    return Dialect(
        anthropic=True,
        invalid_json=anthropic_error_body(
            "invalid_request_error",
            "There was an issue with your request body: it is not a JSON object (simulated).",
        ),
        rate_limited=anthropic_error_body(
            "rate_limit_error", "Number of requests has exceeded your rate limit (simulated)."
        ),
        server_error=anthropic_error_body("api_error", "Internal server error (simulated)."),
        unavailable=anthropic_error_body("api_error", "Service unavailable (simulated)."),
        fault_529=(529, anthropic_error_body("overloaded_error", "Overloaded (simulated).")),
        overload=(529, overloaded),
        invalid=_anthropic_invalid,
        internal=_anthropic_internal,
        rpm_limited=_anthropic_rpm_limited,
        rate_headers=anthropic_headers,
    )
