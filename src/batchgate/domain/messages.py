"""Anthropic Message Batches requests: the create-time rules and the per-request params checks.

Create-time problems (count, custom_id rules) reject the whole create with a 400; problems
inside one request's ``params`` become that request's ``errored`` result, as Anthropic does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from batchgate.domain.jsonl import (
    NUL,
    ParsedLine,
    estimate_parts,
    nested_too_deep,
    too_deep_message,
)
from batchgate.errors import InvalidRequest

MAX_REQUESTS = 100_000
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def check_requests(requests: Any) -> list[dict[str, Any]]:
    """The synchronous create checks; raises InvalidRequest naming the first bad item."""
    if not isinstance(requests, list) or not requests:
        raise InvalidRequest("requests: expected a non-empty list of requests.", param="requests")
    if len(requests) > MAX_REQUESTS:
        raise InvalidRequest(
            f"requests: at most {MAX_REQUESTS} requests per batch, got {len(requests)}.",
            param="requests",
        )
    seen: set[str] = set()
    for i, item in enumerate(requests):
        where = f"requests.{i}"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where}: expected an object.", param=where)
        cid = item.get("custom_id")
        if not isinstance(cid, str) or not CUSTOM_ID.match(cid):
            raise InvalidRequest(
                f"{where}.custom_id: expected 1-64 characters of letters, digits, '_' or '-', "
                f"got {cid!r}.",
                param=f"{where}.custom_id",
            )
        if cid in seen:
            raise InvalidRequest(
                f"{where}.custom_id: {cid!r} is used by an earlier request; custom_id must be "
                "unique within the batch.",
                param=f"{where}.custom_id",
            )
        seen.add(cid)
        if "params" not in item:
            raise InvalidRequest(f"{where}.params: Field required.", param=f"{where}.params")
    return requests


def params_problem(params: Any) -> str | None:
    """What is wrong with one request's Messages params, or None."""
    if not isinstance(params, Mapping):
        return "params: expected an object."
    if not isinstance(params.get("model"), str) or not params["model"]:
        return "params.model: Field required (a model name)."
    if NUL in params["model"]:
        return "params.model: contains a NUL character (\\u0000), which no model name may hold."
    max_tokens = params.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return "params.max_tokens: Field required (an integer >= 1)."
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        return "params.messages: Field required (a non-empty list)."
    if params.get("stream"):
        return "params.stream: streaming is not supported in a batch."
    return None


def parse_request_line(raw: bytes, line: int) -> tuple[str, ParsedLine | str]:
    """One stored request (``{"custom_id", "params"}``, written by the API) → its custom_id and
    the parsed line, or the problem that makes it an errored result."""
    item = orjson.loads(raw)
    cid, params = item["custom_id"], item.get("params")
    if nested_too_deep(raw, item):
        return cid, too_deep_message("params")
    problem = params_problem(params)
    if problem is not None:
        return cid, problem
    est_input, est_output = estimate_parts(params, "/v1/chat/completions")
    return cid, ParsedLine(
        line, cid, dict(params), orjson.dumps(params), params["model"],
        max(1, est_input + est_output), est_output,
    )  # fmt: skip
