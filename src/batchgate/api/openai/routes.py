"""OpenAI Files + Batch endpoints (wire-compat spec §1, §2); ``/v1/batches`` also serves the
inline gateway dialect's batches (see ``api/gateway/routes.py``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from batchgate.api.common import (
    json_body,
    owner_of,
    query_int,
    results_page,
    scope_of,
    service_of,
    view_of,
)
from batchgate.api.gateway import routes as gateway
from batchgate.dialects import DIALECTS
from batchgate.dialects.openai.wire import file_object, page
from batchgate.domain.records import Batch
from batchgate.errors import InvalidRequest


async def upload_file(request: Request) -> Response:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("Uploads must be multipart/form-data with 'purpose' and 'file'.")
    svc = service_of(request)
    async with request.form(max_files=1, max_fields=20) as form:
        purpose, upload = form.get("purpose"), form.get("file")
        if not isinstance(purpose, str) or not purpose:
            raise InvalidRequest(
                "Missing required parameter: 'purpose'.",
                param="purpose", code="missing_required_parameter",
            )  # fmt: skip
        if not isinstance(upload, UploadFile):
            raise InvalidRequest(
                "Missing required parameter: 'file'.",
                param="file", code="missing_required_parameter",
            )  # fmt: skip
        seconds = _expires_after(
            form.get("expires_after[anchor]"), form.get("expires_after[seconds]")
        )
        file = await svc.upload_file(
            owner_of(request), filename=upload.filename or "upload", purpose=purpose,
            src=upload.file, expires_after=seconds,
        )  # fmt: skip
    return JSONResponse(file_object(file))


def _expires_after(anchor: object, seconds: object) -> int | None:
    if anchor is None and seconds is None:
        return None
    if (
        anchor != "created_at"
        or not isinstance(seconds, str)
        or not (seconds.isascii() and seconds.isdigit())  # int() fails on "²", which isdigit
    ):
        raise InvalidRequest(
            "expires_after needs anchor 'created_at' and a whole number of seconds.",
            param="expires_after",
        )
    return int(seconds)


async def list_files(request: Request) -> Response:
    files, more = await service_of(request).list_files(
        scope_of(request), purpose=request.query_params.get("purpose"),
        after=request.query_params.get("after"),
        limit=query_int(request, "limit", 10_000, 1, 10_000),
        order=request.query_params.get("order", "desc"),
    )  # fmt: skip
    return JSONResponse(page([file_object(f) for f in files], more))


async def get_file(request: Request) -> Response:
    file = await service_of(request).get_file(scope_of(request), request.path_params["file_id"])
    return JSONResponse(file_object(file))


async def file_content(request: Request) -> Response:
    svc = service_of(request)
    path = await svc.file_content(scope_of(request), request.path_params["file_id"])
    return FileResponse(path, media_type="application/jsonl")


async def delete_file(request: Request) -> Response:
    file = await service_of(request).delete_file(scope_of(request), request.path_params["file_id"])
    return JSONResponse({"id": file.id, "object": "file", "deleted": True})


# /v1/batches serves the batches of two dialects: OpenAI's (a file) and the inline gateway's.
# A create is told apart by its body; every other call by the batch's dialect, through tables.
SERVED = ("openai", "gateway")


def _render(request: Request, batch: Batch) -> dict[str, Any]:
    project = DIALECTS[batch.dialect].project
    assert project is not None  # both dialects here answer with batch objects
    return project(batch, view_of(request))


async def create_batch(request: Request) -> Response:
    body = await json_body(request)
    dialect = gateway.create_dialect(body)
    batch = await service_of(request).create_batch(dialect, owner_of(request), body)
    return JSONResponse(_render(request, batch))


async def list_batches(request: Request) -> Response:
    batches, more = await service_of(request).list_batches(
        scope_of(request), after=request.query_params.get("after"),
        limit=query_int(request, "limit", 20, 1, 100), dialect=SERVED,
    )  # fmt: skip
    return JSONResponse(page([_render(request, b) for b in batches], more))


async def get_batch(request: Request) -> Response:
    bid = request.path_params["batch_id"]
    batch = await service_of(request).get_batch(scope_of(request), bid, dialect=SERVED)
    return JSONResponse(_render(request, batch))


async def cancel_batch(request: Request) -> Response:
    bid = request.path_params["batch_id"]
    batch = await service_of(request).cancel_batch(scope_of(request), bid, dialect=SERVED)
    return JSONResponse(_render(request, batch))


async def retry_batch(request: Request) -> Response:
    """An extension: a new batch of this ended batch's failed lines (``service/retry.py``)."""
    bid, body = request.path_params["batch_id"], await json_body(request)
    batch = await service_of(request).retry_batch(scope_of(request), bid, body, dialect=SERVED)
    return JSONResponse(_render(request, batch))


async def delete_batch(request: Request) -> Response:
    bid = request.path_params["batch_id"]
    await service_of(request).delete_batch(scope_of(request), bid, dialect=SERVED)
    return JSONResponse({"id": bid, "object": "batch", "deleted": True})


async def _openai_results(request: Request, _batch: Batch) -> Response:
    return await results_page(request, "openai", "application/jsonl")


RESULTS: dict[str, Callable[[Request, Batch], Awaitable[Response]]] = {
    "openai": _openai_results,  # a JSONL page of OpenAI output lines (an extension)
    "gateway": gateway.results,  # the gateway's JSON {"results": [...]}
}


async def batch_results(request: Request) -> Response:
    """Each dialect's own results answer; a client that asks for ``application/jsonl`` (the
    batchgate SDK and CLI) gets the JSONL page of OpenAI output lines for any batch here."""
    bid = request.path_params["batch_id"]
    batch = await service_of(request).get_batch(scope_of(request), bid, dialect=SERVED)
    if "application/jsonl" in request.headers.get("accept", ""):
        return await results_page(request, batch.dialect, "application/jsonl")
    return await RESULTS[batch.dialect](request, batch)


def routes() -> list[Route]:
    return [
        Route("/v1/files", upload_file, methods=["POST"]),
        Route("/v1/files", list_files, methods=["GET"]),
        Route("/v1/files/{file_id}", get_file, methods=["GET"]),
        Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
        Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
        Route("/v1/batches", create_batch, methods=["POST"]),
        Route("/v1/batches", list_batches, methods=["GET"]),
        Route("/v1/batches/{batch_id}", get_batch, methods=["GET"]),
        Route("/v1/batches/{batch_id}", delete_batch, methods=["DELETE"]),
        Route("/v1/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
        Route("/v1/batches/{batch_id}/retry", retry_batch, methods=["POST"]),
        Route("/v1/batches/{batch_id}/results", batch_results, methods=["GET"]),
    ]
