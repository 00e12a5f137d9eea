"""The inline gateway dialect on ``/v1/batches``: which create a body is, and its JSON results
(its create check and wire objects are in ``dialects/gateway/``).

Gateway batches share ``/v1/batches`` with the OpenAI dialect (the routes are in
``api/openai/routes.py``, which dispatch here by the body on create and by the batch's dialect
everywhere else), so the official openai SDK lists and retrieves both kinds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from batchgate.api.common import query_int, service_of
from batchgate.dialects.gateway.wire import RESULTS_HEAD, result_item, results_tail
from batchgate.domain.records import Batch
from batchgate.errors import InvalidRequest
from batchgate.service import Service

GATEWAY_KEYS = frozenset({"model", "requests"})
OPENAI_KEYS = frozenset({"input_file_id", "endpoint", "output_expires_after"})
CHUNK = 1000  # rows read per store call while streaming results
EVERY = 2**62  # no ``limit``: the whole list


def create_dialect(body: Any) -> str:
    """Which create a ``POST /v1/batches`` body asks for: ``gateway`` when it has ``model`` or
    ``requests``, else ``openai`` (whose own checks then name what is missing)."""
    keys = body.keys() if isinstance(body, dict) else frozenset()
    gateway, openai = sorted(GATEWAY_KEYS & keys), sorted(OPENAI_KEYS & keys)
    if gateway and openai:
        raise InvalidRequest(
            f"This body mixes two kinds of batch: {', '.join(openai)} are fields of an OpenAI "
            f"batch (input_file_id, endpoint, completion_window), {', '.join(gateway)} of an "
            "inline gateway batch (model, requests, completion_window). Send one kind.",
            param=gateway[0], code="conflicting_parameters",
        )  # fmt: skip
    return "gateway" if gateway else "openai"


async def results(request: Request, batch: Batch) -> Response:
    """Finished rows in input order as JSON (all of them once the batch ended): every one
    without ``limit``, streamed; with ``after``/``limit`` one page, ``next_after`` the next."""
    after = query_int(request, "after", 0, 0, 2**31 - 1)
    paged = "limit" in request.query_params
    limit = query_int(request, "limit", 0, 1, 10_000) if paged else EVERY
    body = _stream(service_of(request), batch.id, after, limit)
    return StreamingResponse(body, media_type="application/json")


async def _stream(svc: Service, batch_id: str, after: int, limit: int) -> AsyncIterator[bytes]:
    yield RESULTS_HEAD
    sent, more = 0, False
    while sent < limit:
        want = min(CHUNK, limit - sent)
        rows = await svc.finished_rows(batch_id, after, want + 1)
        page = rows[:want]
        if page:
            yield (b"," if sent else b"") + b",".join(result_item(r) for r in page)
            sent, after = sent + len(page), page[-1].line
        more = len(rows) > want
        if not more:
            break
    yield results_tail(more, after)
