"""A finished row's error as the inline dialects (gateway, jobs) show it."""

from __future__ import annotations

from typing import Any

import orjson


def row_error(
    response: bytes | None, error_code: str | None, error_message: str | None
) -> tuple[str, str]:
    """(code, message) of a row that did not succeed. An upstream's error answer speaks for
    itself (its ``code``, else ``upstream_error``, and its message); otherwise the engine's code
    says what happened (``model_not_found``, ``request_timeout``, ``batch_cancelled``, …)."""
    error = _upstream_error(response)
    if error is not None:
        code, message = error.get("code"), error.get("message")
        return (
            code if isinstance(code, str) and code else "upstream_error",
            message if isinstance(message, str) and message else error_message or "",
        )
    return error_code or "unknown_error", error_message or ""


def _upstream_error(response: bytes | None) -> dict[str, Any] | None:
    if response is None:
        return None
    try:
        doc = orjson.loads(response)
    except orjson.JSONDecodeError:
        return None
    error = doc.get("error") if isinstance(doc, dict) else None
    return error if isinstance(error, dict) else None
