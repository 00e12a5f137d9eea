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
)
from batchgate.api.gateway import routes as gateway
from batchgate.api.openai.render import batch_object, file_object, page
from batchgate.errors import FileNotFound, InvalidRequest


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
        row = await svc.store.call(
            svc.upload_file, owner_of(request), filename=upload.filename or "upload",
            purpose=purpose, src=upload.file, expires_after=seconds,
        )  # fmt: skip
    return JSONResponse(file_object(row))


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
    svc = service_of(request)
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be 'asc' or 'desc'.", param="order")
    rows, more = await svc.store.call(
        svc.store.list_files, scope_of(request),
        purpose=request.query_params.get("purpose"), after=request.query_params.get("after"),
        limit=query_int(request, "limit", 10_000, 1, 10_000), order=order,
    )  # fmt: skip
    return JSONResponse(page([file_object(r) for r in rows], more))


async def get_file(request: Request) -> Response:
    svc = service_of(request)
    row = await svc.store.call(svc.get_file, scope_of(request), request.path_params["file_id"])
    return JSONResponse(file_object(row))


async def file_content(request: Request) -> Response:
    svc = service_of(request)
    row = await svc.store.call(svc.get_file, scope_of(request), request.path_params["file_id"])
    path = svc.blobs.path(row["blob_key"])
    if not path.is_file():  # FileResponse would fail with a 500
        raise FileNotFound(f"The content of file {row['id']} is gone.", param="id")
    return FileResponse(path, media_type="application/jsonl")


async def delete_file(request: Request) -> Response:
    svc = service_of(request)
    row = await svc.store.call(svc.delete_file, scope_of(request), request.path_params["file_id"])
    return JSONResponse({"id": row["id"], "object": "file", "deleted": True})


# /v1/batches serves the batches of two dialects: OpenAI's (a file) and the inline gateway's.
# A create is told apart by its body; every other call by the batch's dialect, through tables.
DIALECTS = ("openai", "gateway")
Render = Callable[[Request, dict[str, Any]], dict[str, Any]]
RENDER: dict[str, Render] = {
    "openai": lambda _request, row: batch_object(row),
    "gateway": gateway.render_batch,
}


def _render(request: Request, row: dict[str, Any]) -> dict[str, Any]:
    return RENDER[row["dialect"]](request, row)


async def create_batch(request: Request) -> Response:
    body = await json_body(request)
    return await CREATE[gateway.create_dialect(body)](request, body)


async def _create_openai(request: Request, body: Any) -> Response:
    svc = service_of(request)
    row = await svc.store.call(svc.create_openai_batch, owner_of(request), body)
    request.app.state.runtime.wake()
    return JSONResponse(batch_object(row))


CREATE: dict[str, Callable[[Request, Any], Awaitable[Response]]] = {
    "openai": _create_openai,
    "gateway": gateway.create,
}


async def list_batches(request: Request) -> Response:
    svc = service_of(request)
    rows, more = await svc.store.call(
        svc.store.list_batches, scope_of(request), after=request.query_params.get("after"),
        limit=query_int(request, "limit", 20, 1, 100), dialect=DIALECTS,
    )  # fmt: skip
    return JSONResponse(page([_render(request, r) for r in rows], more))


async def get_batch(request: Request) -> Response:
    svc = service_of(request)
    row = await svc.store.call(
        svc.get_batch, scope_of(request), request.path_params["batch_id"], dialect=DIALECTS
    )
    return JSONResponse(_render(request, row))


async def cancel_batch(request: Request) -> Response:
    svc = service_of(request)
    bid = request.path_params["batch_id"]
    row = await svc.store.call(svc.cancel_batch, scope_of(request), bid, dialect=DIALECTS)
    request.app.state.runtime.wake()
    return JSONResponse(_render(request, row))


async def delete_batch(request: Request) -> Response:
    svc = service_of(request)
    bid = request.path_params["batch_id"]
    await svc.store.call(svc.delete_batch, scope_of(request), bid, dialect=DIALECTS)
    return JSONResponse({"id": bid, "object": "batch", "deleted": True})


async def _openai_results(request: Request, _batch: dict[str, Any]) -> Response:
    return await results_page(request, "openai", "application/jsonl")


RESULTS: dict[str, Callable[[Request, dict[str, Any]], Awaitable[Response]]] = {
    "openai": _openai_results,  # a JSONL page of OpenAI output lines (an extension)
    "gateway": gateway.results,  # the gateway's JSON {"results": [...]}
}


async def batch_results(request: Request) -> Response:
    """Each dialect's own results answer; a client that asks for ``application/jsonl`` (the
    batchgate SDK and CLI) gets the JSONL page of OpenAI output lines for any batch here."""
    svc = service_of(request)
    row = await svc.store.call(
        svc.get_batch, scope_of(request), request.path_params["batch_id"], dialect=DIALECTS
    )
    if "application/jsonl" in request.headers.get("accept", ""):
        return await results_page(request, row["dialect"], "application/jsonl")
    return await RESULTS[row["dialect"]](request, row)


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
        Route("/v1/batches/{batch_id}/results", batch_results, methods=["GET"]),
    ]
