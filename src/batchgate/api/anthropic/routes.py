"""Anthropic Message Batches endpoints (wire-compat spec §3); auth by x-api-key or Bearer."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from batchgate.api.anthropic.render import message_batch, page
from batchgate.api.common import (
    PAGED_RESULTS,
    json_body,
    owner_of,
    query_int,
    results_page,
    scope_of,
    service_of,
)
from batchgate.domain.states import TERMINAL
from batchgate.errors import InvalidRequest, PayloadTooLarge

MAX_BODY = 256 * 1024 * 1024
DIALECT = "anthropic"


def _base(request: Request) -> str:
    return str(request.base_url)


async def create(request: Request) -> Response:
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > MAX_BODY:
        raise PayloadTooLarge(f"The request body is over {MAX_BODY} bytes.")
    svc = service_of(request)
    body = await json_body(request)
    row = await svc.store.call(svc.create_message_batch, owner_of(request), body)
    request.app.state.runtime.wake()
    return JSONResponse(message_batch(row, _base(request)))


async def retrieve(request: Request) -> Response:
    svc = service_of(request)
    row = await svc.store.call(
        svc.get_batch, scope_of(request), request.path_params["batch_id"], dialect=DIALECT
    )
    return JSONResponse(message_batch(row, _base(request)))


async def list_batches(request: Request) -> Response:
    svc = service_of(request)
    after, before = request.query_params.get("after_id"), request.query_params.get("before_id")
    if after and before:
        raise InvalidRequest("Give after_id or before_id, not both.", param="before_id")
    rows, more = await svc.store.call(
        svc.store.list_batches, scope_of(request), after=after, before=before,
        limit=query_int(request, "limit", 20, 1, 1000), dialect=DIALECT,
    )  # fmt: skip
    base = _base(request)
    return JSONResponse(page([message_batch(r, base) for r in rows], more))


async def cancel(request: Request) -> Response:
    svc = service_of(request)
    row = await svc.store.call(
        svc.cancel_batch, scope_of(request), request.path_params["batch_id"], dialect=DIALECT
    )
    request.app.state.runtime.wake()
    return JSONResponse(message_batch(row, _base(request)))


async def delete(request: Request) -> Response:
    svc = service_of(request)
    bid = request.path_params["batch_id"]
    await svc.store.call(svc.delete_batch, scope_of(request), bid, dialect=DIALECT)
    return JSONResponse({"id": bid, "type": "message_batch_deleted"})


async def results(request: Request) -> Response:
    if PAGED_RESULTS & request.query_params.keys():
        return await results_page(request, DIALECT, "application/x-jsonl")
    svc = service_of(request)
    bid = request.path_params["batch_id"]
    row = await svc.store.call(svc.get_batch, scope_of(request), bid, dialect=DIALECT)
    if row["status"] not in TERMINAL or not row["output_file_id"]:
        raise InvalidRequest(f"Batch {bid} has not ended yet; its results are not ready.")
    path = svc.blobs.path(row["output_file_id"])
    return FileResponse(path, media_type="application/x-jsonl")


def routes() -> list[Route]:
    prefix = "/v1/messages/batches"
    return [
        Route(prefix, create, methods=["POST"]),
        Route(prefix, list_batches, methods=["GET"]),
        Route(prefix + "/{batch_id}", retrieve, methods=["GET"]),
        Route(prefix + "/{batch_id}", delete, methods=["DELETE"]),
        Route(prefix + "/{batch_id}/cancel", cancel, methods=["POST"]),
        Route(prefix + "/{batch_id}/results", results, methods=["GET"]),
    ]
