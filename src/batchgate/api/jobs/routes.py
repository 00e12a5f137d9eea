"""The jobs dialect (``/qai/v1/batch…``): submit plain-prompt jobs, list them, read one.

Errors use a simple envelope, ``{"error": "<message>"}``, with the location in the message
(``jobs.2.prompt: …``, ``line 3: max_tokens: …``); see ``api/errors.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from batchgate.api.common import json_body, owner_of, query_int, scope_of, service_of
from batchgate.api.jobs.render import job_object
from batchgate.domain.budget import BUDGET_FIELD, parse_budget_usd
from batchgate.domain.jobs import check_jobs, parse_jsonl
from batchgate.errors import InvalidRequest

Parse = Callable[[Any, int], list[dict[str, Any]]]


async def _submit(request: Request, field: str, parse: Parse) -> list[str]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidRequest(f"The request body must be a JSON object with '{field}'.")
    svc, owner = service_of(request), owner_of(request)

    def create() -> list[str]:
        budget = parse_budget_usd(body.get(BUDGET_FIELD))
        jobs = parse(body.get(field), svc.config.limits.max_lines)
        return svc.create_jobs(owner, jobs, budget_ticks=budget)

    job_ids = await svc.store.call(create)
    request.app.state.runtime.wake()
    return job_ids


async def submit(request: Request) -> Response:
    job_ids = await _submit(request, "jobs", check_jobs)
    return JSONResponse({"job_ids": job_ids, "status": "pending"})


async def submit_jsonl(request: Request) -> Response:
    return JSONResponse({"job_ids": await _submit(request, "jsonl", parse_jsonl)})


async def list_jobs(request: Request) -> Response:
    svc = service_of(request)
    rows, more = await svc.store.call(
        svc.list_jobs, scope_of(request), after=request.query_params.get("after"),
        limit=query_int(request, "limit", 100, 1, 1000),
    )  # fmt: skip
    return JSONResponse({"jobs": [job_object(r) for r in rows], "has_more": more})


async def get_job(request: Request) -> Response:
    svc = service_of(request)
    row = await svc.store.call(svc.get_job, scope_of(request), request.path_params["job_id"])
    return JSONResponse(job_object(row))


def routes() -> list[Route]:
    prefix = "/qai/v1/batch"
    return [
        Route(prefix, submit, methods=["POST"]),
        Route(prefix + "/jsonl", submit_jsonl, methods=["POST"]),
        Route(prefix + "/jobs", list_jobs, methods=["GET"]),
        Route(prefix + "/jobs/{job_id}", get_job, methods=["GET"]),
    ]
