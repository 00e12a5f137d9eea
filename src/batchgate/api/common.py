"""Request helpers shared by every dialect: JSON bodies, query parameters, the caller's tenant
(``owner_of`` for what a request creates, ``scope_of`` for what it reads or changes)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from batchgate.api.auth import Caller
from batchgate.dialects import View
from batchgate.domain.jsonl import nested_too_deep, too_deep_message
from batchgate.errors import InvalidRequest
from batchgate.service import Service


def service_of(request: Request) -> Service:
    svc: Service = request.app.state.runtime.service
    return svc


def view_of(request: Request) -> View:
    """What a status projection may know of this request (see ``dialects/base.py``)."""
    return View(str(request.base_url), service_of(request).provider_of)


def caller_of(request: Request) -> Caller:
    """Who is calling, as the Authenticate middleware resolved it."""
    caller: Caller = request.state.caller
    return caller


def owner_of(request: Request) -> str:
    """The tenant that owns what this request creates (files, batches)."""
    return caller_of(request).tenant


def scope_of(request: Request) -> str | None:
    """The tenant whose objects this request may read or change; None (an admin key) means
    every tenant. Another tenant's object is then simply not found: a 404, never a 403."""
    return caller_of(request).scope


async def json_body(request: Request) -> Any:
    """The JSON body; an empty body is ``{}`` (the SDKs send none on cancel and delete)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"We could not parse the JSON body of your request: {exc}.", code="invalid_json"
        ) from None
    if nested_too_deep(raw, doc):  # it could be read, but not stored and sent on
        raise InvalidRequest(too_deep_message("The request body"), code="invalid_json")
    return doc


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


PAGED_RESULTS = frozenset({"after", "limit"})


async def results_page(request: Request, dialect: str, media_type: str) -> Response:
    """A page of a batch's finished result lines (``?after=LINE&limit=N``), running or ended;
    ``x-batchgate-next-after`` is the ``after`` of the next page."""
    page = await service_of(request).results_page(
        scope_of(request), request.path_params["batch_id"], dialect=dialect,
        after=query_int(request, "after", 0, 0, 2**31 - 1),
        limit=query_int(request, "limit", 1000, 1, 10_000),
    )  # fmt: skip
    headers = {
        "x-batchgate-next-after": str(page.next_after),
        "x-batchgate-has-more": "true" if page.has_more else "false",
    }
    return Response(page.body, media_type=media_type, headers=headers)
