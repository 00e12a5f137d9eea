"""The inline gateway dialect's ``requests`` list: the create-time checks and its stored form.

Everything that would fail the whole batch at ingest (a missing custom_id, a body that is no
Chat Completions request) is refused at create with a 400 naming ``requests.N.…``; what can
only fail one request (its model routes nowhere, the upstream refuses it) becomes that request's
error. The checked requests are stored as OpenAI batch input lines, so ingest reads them as it
reads a file.
"""

from __future__ import annotations

from typing import Any

import orjson

from batchgate.domain.jsonl import NUL
from batchgate.errors import InvalidRequest

ENDPOINT = "/v1/chat/completions"
MAX_CUSTOM_ID = 64


def _fail(where: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{where}: {message}", param=where)


def _custom_id(item: dict[str, Any], where: str, seen: set[str]) -> str:
    cid = item.get("custom_id")
    if not isinstance(cid, str) or not 0 < len(cid) <= MAX_CUSTOM_ID:
        shown = f"{len(cid)} characters" if isinstance(cid, str) else repr(cid)
        raise _fail(
            f"{where}.custom_id", f"expected a string of 1-{MAX_CUSTOM_ID} characters, got {shown}."
        )
    if NUL in cid:
        raise _fail(f"{where}.custom_id", "contains a NUL character (\\u0000).")
    if cid in seen:
        raise _fail(
            f"{where}.custom_id",
            f"{cid!r} is used by an earlier request; custom_id must be unique within the batch.",
        )
    seen.add(cid)
    return cid


def _body(item: dict[str, Any], where: str, model: str) -> dict[str, Any]:
    """The Chat Completions body with the batch's model filled in where it names none."""
    body = item.get("body")
    where = f"{where}.body"
    if not isinstance(body, dict):
        raise _fail(where, "expected a Chat Completions request body (an object).")
    if body.get("model") is None:
        body = {**body, "model": model}
    if not isinstance(body["model"], str) or not body["model"] or NUL in body["model"]:
        raise _fail(f"{where}.model", "expected a non-empty string without NUL (or leave it out).")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _fail(f"{where}.messages", "expected a non-empty list of messages.")
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _fail(
                f"{where}.messages.{n}",
                "expected a message object with a 'role' (and its 'content').",
            )
    if body.get("stream") is True:
        raise _fail(f"{where}.stream", "batch requests cannot stream; leave it out.")
    return body


def check_model(value: Any) -> str:
    if not isinstance(value, str) or not value or NUL in value:
        code = "missing_required_parameter" if value is None else "invalid_value"
        raise InvalidRequest(
            "model: expected a model name ('provider:model', an alias or a listed model), "
            f"got {value!r}.",
            param="model", code=code,
        )  # fmt: skip
    return value


def request_lines(requests: Any, model: str, max_requests: int) -> list[bytes]:
    """Check the ``requests`` list; each request as one OpenAI batch input line (no newline)."""
    if not isinstance(requests, list) or not requests:
        raise _fail("requests", "expected a non-empty list of {custom_id, body} objects.")
    if len(requests) > max_requests:
        raise _fail(
            "requests",
            f"this server takes at most {max_requests} requests per batch, got {len(requests)}.",
        )
    seen: set[str] = set()
    lines = []
    for i, item in enumerate(requests):
        where = f"requests.{i}"
        if not isinstance(item, dict):
            raise _fail(where, "expected an object with custom_id and body.")
        cid = _custom_id(item, where, seen)
        body = _body(item, where, model)
        line = {"custom_id": cid, "method": "POST", "url": ENDPOINT, "body": body}
        lines.append(orjson.dumps(line))
    return lines
