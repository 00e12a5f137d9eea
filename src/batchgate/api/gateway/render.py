"""Gateway wire objects: the batch (a superset of the OpenAI Batch) and its results from rows."""

from __future__ import annotations

from typing import Any

import orjson

from batchgate.api.openai.render import batch_object
from batchgate.api.rows import RowTuple, row_error
from batchgate.domain.states import RowState


def gateway_batch(row: dict[str, Any], provider: str | None) -> dict[str, Any]:
    """Every key of the OpenAI Batch (so the openai SDK reads it), plus ``provider``: the
    upstream the batch's ``model`` routes to."""
    return {**batch_object(row), "provider": provider}


def result_item(row: RowTuple) -> bytes:
    """``{"custom_id", "result": <chat completion> | null, "error": {code, message} | null}``."""
    _line, custom_id, state, _status, response, _rid, error_code, error_message = row
    head = b'{"custom_id":' + orjson.dumps(custom_id)
    if state == RowState.SUCCEEDED:
        return head + b',"result":' + bytes(response) + b',"error":null}'
    code, message = row_error(
        bytes(response) if response is not None else None, error_code, error_message
    )
    error = orjson.dumps({"code": code, "message": message})
    return head + b',"result":null,"error":' + error + b"}"


def results_tail(has_more: bool, next_after: int) -> bytes:
    """What closes a results answer: the paging keys after the ``results`` list."""
    return b'],"has_more":%s,"next_after":%d}' % (b"true" if has_more else b"false", next_after)


RESULTS_HEAD = b'{"object":"list","results":['
