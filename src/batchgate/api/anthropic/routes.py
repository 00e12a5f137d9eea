"""Anthropic Message Batches endpoints (wire-compat spec §3); auth by x-api-key or Bearer."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from batchgate.api.common import (
    PAGED_RESULTS,
    json_body,
    owner_of,
    query_int,
    results_page,
    scope_of,
    service_of,
    view_of,
)
from batchgate.dialects.anthropic.wire import message_batch, page
from batchgate.errors import PayloadTooLarge

MAX_BODY = 256 * 1024 * 1024
DIALECT = "anthropic"


async def create(request: Request) -> Response:
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > MAX_BODY:
        raise PayloadTooLarge(f"The request body is over {MAX_BODY} bytes.")
    body = await json_body(request)
    batch = await service_of(request).create_batch(DIALECT, owner_of(request), body)
    return JSONResponse(message_batch(batch, view_of(request)))


async def retrieve(request: Request) -> Response:
    bid = request.path_params["batch_id"]
    batch = await service_of(request).get_batch(scope_of(request), bid, dialect=DIALECT)
    return JSONResponse(message_batch(batch, view_of(request)))


async def list_batches(request: Request) -> Response:
    batches, more = await service_of(request).list_batches(
        scope_of(request), after=request.query_params.get("after_id"),
        before=request.query_params.get("before_id"),
        limit=query_int(request, "limit", 20, 1, 1000), dialect=DIALECT,
    )  # fmt: skip
    view = view_of(request)
    return JSONResponse(page([message_batch(b, view) for b in batches], more))


async def cancel(request: Request) -> Response:
    bid = request.path_params["batch_id"]
    batch = await service_of(request).cancel_batch(scope_of(request), bid, dialect=DIALECT)
    return JSONResponse(message_batch(batch, view_of(request)))


async def retry(request: Request) -> Response:
    """An extension: a new Message Batch of this ended batch's errored, canceled and expired
    requests (``service/retry.py``)."""
    bid, body = request.path_params["batch_id"], await json_body(request)
    batch = await service_of(request).retry_batch(scope_of(request), bid, body, dialect=DIALECT)
    return JSONResponse(message_batch(batch, view_of(request)))


async def delete(request: Request) -> Response:
    bid = request.path_params["batch_id"]
    await service_of(request).delete_batch(scope_of(request), bid, dialect=DIALECT)
    return JSONResponse({"id": bid, "type": "message_batch_deleted"})


async def results(request: Request) -> Response:
    if PAGED_RESULTS & request.query_params.keys():
        return await results_page(request, DIALECT, "application/x-jsonl")
    bid = request.path_params["batch_id"]
    path = await service_of(request).results_file(scope_of(request), bid, dialect=DIALECT)
    return FileResponse(path, media_type="application/x-jsonl")


def routes() -> list[Route]:
    prefix = "/v1/messages/batches"
    return [
        Route(prefix, create, methods=["POST"]),
        Route(prefix, list_batches, methods=["GET"]),
        Route(prefix + "/{batch_id}", retrieve, methods=["GET"]),
        Route(prefix + "/{batch_id}", delete, methods=["DELETE"]),
        Route(prefix + "/{batch_id}/cancel", cancel, methods=["POST"]),
        Route(prefix + "/{batch_id}/retry", retry, methods=["POST"]),
        Route(prefix + "/{batch_id}/results", results, methods=["GET"]),
    ]
