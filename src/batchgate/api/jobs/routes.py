"""The jobs dialect (``/qai/v1/batch…``): submit plain-prompt jobs, list them, read one.

Errors use a simple envelope, ``{"error": "<message>"}``, with the location in the message
(``jobs.2.prompt: …``, ``line 3: max_tokens: …``); see ``api/errors.py``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from batchgate.api.common import json_body, owner_of, query_int, scope_of, service_of
from batchgate.dialects.jobs.create import check_body
from batchgate.dialects.jobs.wire import job_object
from batchgate.domain.budget import BUDGET_FIELD
from batchgate.domain.jobs import job_id

DIALECT = "jobs"


async def _submit(request: Request, field: str) -> list[str]:
    """One submission of ``field`` (``jobs`` or ``jsonl``) → the ids of its jobs, in order."""
    body = check_body(await json_body(request), field)
    wanted = {field: body.get(field), BUDGET_FIELD: body.get(BUDGET_FIELD)}
    batch = await service_of(request).create_batch(DIALECT, owner_of(request), wanted)
    return [job_id(batch.id, n) for n in range(1, batch.total + 1)]


async def submit(request: Request) -> Response:
    job_ids = await _submit(request, "jobs")
    return JSONResponse({"job_ids": job_ids, "status": "pending"})


async def submit_jsonl(request: Request) -> Response:
    return JSONResponse({"job_ids": await _submit(request, "jsonl")})


async def retry(request: Request) -> Response:
    """An extension: ``{"job_ids": [failed job ids]}`` run again as one new submission; the
    answer's ``job_ids`` are the new jobs, in the order asked, ``retry_of`` the old ones."""
    body = await json_body(request)
    batch = await service_of(request).retry_jobs(scope_of(request), body)
    job_ids = [job_id(batch.id, n) for n in range(1, batch.total + 1)]
    return JSONResponse({"job_ids": job_ids, "status": "pending", "retry_of": body["job_ids"]})


async def list_jobs(request: Request) -> Response:
    rows, more = await service_of(request).list_jobs(
        scope_of(request), after=request.query_params.get("after"),
        limit=query_int(request, "limit", 100, 1, 1000),
    )  # fmt: skip
    return JSONResponse({"jobs": [job_object(r) for r in rows], "has_more": more})


async def get_job(request: Request) -> Response:
    row = await service_of(request).get_job(scope_of(request), request.path_params["job_id"])
    return JSONResponse(job_object(row))


def routes() -> list[Route]:
    prefix = "/qai/v1/batch"
    return [
        Route(prefix, submit, methods=["POST"]),
        Route(prefix + "/jsonl", submit_jsonl, methods=["POST"]),
        Route(prefix + "/retry", retry, methods=["POST"]),
        Route(prefix + "/jobs", list_jobs, methods=["GET"]),
        Route(prefix + "/jobs/{job_id}", get_job, methods=["GET"]),
    ]
