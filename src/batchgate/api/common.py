"""Request helpers shared by every dialect: JSON bodies, query parameters, the caller's tenant."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from batchgate.errors import InvalidRequest
from batchgate.service import Service


def service_of(request: Request) -> Service:
    svc: Service = request.app.state.runtime.service
    return svc


def tenant_of(request: Request) -> str:
    """The caller's tenant ('' until API keys exist; see issue 5)."""
    return ""


async def json_body(request: Request) -> Any:
    """The JSON body; an empty body is ``{}`` (the SDKs send none on cancel and delete)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"We could not parse the JSON body of your request: {exc}.", code="invalid_json"
        ) from None


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise InvalidRequest(
            f"Invalid '{name}': expected an integer from {low} to {high}, got {raw!r}.",
            param=name, code="invalid_value",
        )  # fmt: skip
    return value
