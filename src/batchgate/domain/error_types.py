"""Each provider's error ``type`` for an HTTP status, so that a client's SDK raises the exception
class it would raise against the real provider: used where batchgate answers in the Anthropic
envelope (its own errors) and where it re-renders an upstream's error in the other dialect."""

from __future__ import annotations

__all__ = ["ANTHROPIC_ERROR_TYPES", "anthropic_error_type"]

ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    """The table's type; another 4xx is ``invalid_request_error``, another 5xx ``api_error``."""
    default = "api_error" if status >= 500 else "invalid_request_error"
    return ANTHROPIC_ERROR_TYPES.get(status, default)
