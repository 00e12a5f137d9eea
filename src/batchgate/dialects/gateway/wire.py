"""The gateway dialect's wire objects: the batch (a superset of the OpenAI Batch) and its JSON
results from rows; errors use the OpenAI envelope."""

from __future__ import annotations

from typing import Any

import orjson

from batchgate.dialects.base import View
from batchgate.dialects.openai.wire import batch_object
from batchgate.dialects.rows import row_error
from batchgate.domain.records import Batch, FinishedRow
from batchgate.domain.states import RowState


def gateway_batch(row: Batch, view: View) -> dict[str, Any]:
    """Every key of the OpenAI Batch (so the openai SDK reads it), plus ``provider``: the
    upstream the batch's ``model`` routes to."""
    return {**batch_object(row), "provider": view.provider_of(row.model)}


def result_item(row: FinishedRow) -> bytes:
    """``{"custom_id", "result": <chat completion> | null, "error": {code, message} | null}``."""
    head = b'{"custom_id":' + orjson.dumps(row.custom_id)
    response = bytes(row.response) if row.response is not None else None
    if row.state == RowState.SUCCEEDED:
        return head + b',"result":' + (response or b"null") + b',"error":null}'
    code, message = row_error(response, row.error_code, row.error_message)
    error = orjson.dumps({"code": code, "message": message})
    return head + b',"result":null,"error":' + error + b"}"


def results_tail(has_more: bool, next_after: int) -> bytes:
    """What closes a results answer: the paging keys after the ``results`` list."""
    return b'],"has_more":%s,"next_after":%d}' % (b"true" if has_more else b"false", next_after)


RESULTS_HEAD = b'{"object":"list","results":['
