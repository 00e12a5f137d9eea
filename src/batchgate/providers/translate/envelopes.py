"""Upstream error bodies re-rendered in the caller's dialect (wire spec §3.5 for Anthropic types).

The message is the upstream's own; the type follows the HTTP status, so the caller's SDK raises
the exception class it would raise against the real provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchgate.domain.error_types import anthropic_error_type
from batchgate.providers.translate.common import JSON

OPENAI_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    429: "rate_limit_error",
}
"""Other 4xx → ``invalid_request_error``; 5xx → ``server_error``."""


def anthropic_error_from_openai(
    status: int, body: Mapping[str, Any] | None, *, request_id: str | None = None
) -> JSON:
    """``{"type": "error", "error": {...}, "request_id": ...}``, as an errored result carries it."""
    error = {"type": anthropic_error_type(status), "message": upstream_message(status, body)}
    return {"type": "error", "error": error, "request_id": request_id}


def openai_error_from_anthropic(status: int, body: Mapping[str, Any] | None) -> JSON:
    """``{"error": {"message", "type", "param": None, "code": None}}``."""
    kind = OPENAI_ERROR_TYPES.get(
        status, "server_error" if status >= 500 else "invalid_request_error"
    )
    message = upstream_message(status, body)
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def upstream_message(status: int, body: Mapping[str, Any] | None) -> str:
    """The upstream's own words from either envelope (or a bare ``message``/``detail``)."""
    if isinstance(body, Mapping):
        error = body.get("error")
        candidates = (
            error.get("message") if isinstance(error, Mapping) else error,
            body.get("message"),
            body.get("detail"),
        )
        for text in candidates:
            if isinstance(text, str) and text:
                return text
    return f"The upstream answered HTTP {status} without an error message."
