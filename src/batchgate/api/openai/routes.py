"""OpenAI Files + Batch endpoints (wire-compat spec §1, §2)."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from batchgate.api.common import json_body, query_int, results_page, service_of, tenant_of
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
            svc.upload_file, tenant_of(request), filename=upload.filename or "upload",
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
        svc.store.list_files, tenant_of(request),
        purpose=request.query_params.get("purpose"), after=request.query_params.get("after"),
        limit=query_int(request, "limit", 10_000, 1, 10_000), order=order,
    )  # fmt: skip
    return JSONResponse(page([file_object(r) for r in rows], more))


async def get_file(request: Request) -> Response:
    svc = service_of(request)
    row = await svc.store.call(svc.get_file, tenant_of(request), request.path_params["file_id"])
    return JSONResponse(file_object(row))


async def file_content(request: Request) -> Response:
    svc = service_of(request)
    row = await svc.store.call(svc.get_file, tenant_of(request), request.path_params["file_id"])
    path = svc.blobs.path(row["blob_key"])
    if not path.is_file():  # FileResponse would fail with a 500
        raise FileNotFound(f"The content of file {row['id']} is gone.", param="id")
    return FileResponse(path, media_type="application/jsonl")


async def delete_file(request: Request) -> Response:
    svc = service_of(request)
    row = await svc.store.call(svc.delete_file, tenant_of(request), request.path_params["file_id"])
    return JSONResponse({"id": row["id"], "object": "file", "deleted": True})


async def create_batch(request: Request) -> Response:
    svc = service_of(request)
    body = await json_body(request)
    row = await svc.store.call(svc.create_openai_batch, tenant_of(request), body)
    request.app.state.runtime.wake()
    return JSONResponse(batch_object(row))


async def list_batches(request: Request) -> Response:
    svc = service_of(request)
    rows, more = await svc.store.call(
        svc.store.list_batches, tenant_of(request), after=request.query_params.get("after"),
        limit=query_int(request, "limit", 20, 1, 100), dialect="openai",
    )  # fmt: skip
    return JSONResponse(page([batch_object(r) for r in rows], more))


async def get_batch(request: Request) -> Response:
    svc = service_of(request)
    row = await svc.store.call(svc.get_batch, tenant_of(request), request.path_params["batch_id"])
    return JSONResponse(batch_object(row))


async def cancel_batch(request: Request) -> Response:
    svc = service_of(request)
    bid = request.path_params["batch_id"]
    row = await svc.store.call(svc.cancel_batch, tenant_of(request), bid)
    request.app.state.runtime.wake()
    return JSONResponse(batch_object(row))


async def delete_batch(request: Request) -> Response:
    svc = service_of(request)
    bid = request.path_params["batch_id"]
    await svc.store.call(svc.delete_batch, tenant_of(request), bid, dialect="openai")
    return JSONResponse({"id": bid, "object": "batch", "deleted": True})


async def batch_results(request: Request) -> Response:
    return await results_page(request, "openai", "application/jsonl")


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
