"""``GET /v1/usage`` and ``GET /v1/budgets``, batchgate extensions in the OpenAI envelope:
requests, tokens and cost per tenant (and model) over a time range, and each tenant budget with
its spend in the current period. A key sees its own tenant; an admin key every tenant, or the
one named by ``tenant=``."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from batchgate.api.common import caller_of, service_of
from batchgate.domain.budget import tenant_budget_object
from batchgate.domain.usage import time_range, usage_object
from batchgate.errors import InvalidRequest

_GROUPS = {None: False, "model": True}  # group_by -> by model (always by tenant)


async def usage(request: Request) -> Response:
    params = request.query_params
    start, end = time_range(params.get("start"), params.get("end"), time.time())
    by_model = _by_model(params.get("group_by"))
    groups = await service_of(request).usage(
        _tenant(request, params.get("tenant")), start=start, end=end, by_model=by_model
    )
    return JSONResponse(usage_object(start, end, groups, by_model=by_model))


async def budgets(request: Request) -> Response:
    tenant = _tenant(request, request.query_params.get("tenant"))
    rows = await service_of(request).list_budgets(tenant)
    return JSONResponse({"object": "list", "data": [tenant_budget_object(r) for r in rows]})


def _by_model(group_by: str | None) -> bool:
    if group_by not in _GROUPS:
        raise InvalidRequest(
            f"Invalid 'group_by': usage is always per tenant, and 'model' also splits it per "
            f"model; got {group_by!r}.",
            param="group_by", code="invalid_value",
        )  # fmt: skip
    return _GROUPS[group_by]


def _tenant(request: Request, asked: str | None) -> str | None:
    """Whose usage: the caller's own tenant, or for an admin key every tenant (or ``asked``)."""
    caller = caller_of(request)
    if caller.admin:
        return asked
    if asked is not None and asked != caller.tenant:
        raise InvalidRequest(
            "Invalid 'tenant': only an admin key reads another tenant's usage and budget; "
            "this key's are its own tenant's (leave 'tenant' out).",
            param="tenant", code="invalid_value",
        )  # fmt: skip
    return caller.tenant


def routes() -> list[Route]:
    return [
        Route("/v1/usage", usage, methods=["GET"]),
        Route("/v1/budgets", budgets, methods=["GET"]),
    ]
