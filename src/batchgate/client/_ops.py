"""Sans-IO calls: each API operation as a ``Call`` (what to send, how to read the answer),
shared by the sync and async clients, which only send them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from batchgate.client._bodies import Body, Budget, FileSource, Requests, message_requests, multipart
from batchgate.client.errors import APIResponseError, APIStatusError, status_error_class
from batchgate.client.types import (
    Batch,
    BatchResult,
    Deleted,
    File,
    MessageBatch,
    MessageBatchResult,
    Page,
    Raw,
)

T = TypeVar("T")
B = TypeVar("B")
R = TypeVar("R")
Params = Mapping[str, str | int]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP exchange: ``path`` is below the server root (``/v1/...``)."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Params = field(default_factory=dict)
    json: Any = None
    body: Body | None = None
    accept: str = "application/json"


def seg(value: str) -> str:
    """An id as one path segment (so ``../x`` cannot walk the path)."""
    return quote(value, safe="")


def params(**values: str | int | None) -> dict[str, str | int]:
    return {k: v for k, v in values.items() if v is not None}


def json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        raise APIResponseError(
            f"Expected a JSON object from {response.request.method} {response.request.url}, "
            f"got {response.text[:200]!r}.",
            url=str(response.request.url),
        )
    return value


def reader(build: Callable[[Raw], T]) -> Callable[[httpx.Response], T]:
    """Parse a JSON-object answer with ``build``; a shape it cannot read is APIResponseError."""

    def parse(response: httpx.Response) -> T:
        raw = json_object(response)
        try:
            return build(raw)
        except ValueError as exc:
            url = str(response.request.url)
            raise APIResponseError(f"Unreadable answer from {url}: {exc}.", url=url) from None

    return parse


def page_reader(item: Callable[[Raw], T]) -> Callable[[httpx.Response], Page[T]]:
    return reader(lambda raw: Page.from_wire(raw, item))


def content(response: httpx.Response) -> bytes:
    return response.content


def ignore(response: httpx.Response) -> None:
    """For streamed calls, whose body the caller reads itself."""


# -- the error envelope ----------------------------------------------------------------------


def _envelope(body: Any) -> dict[str, Any]:
    """The inner error object of either dialect: OpenAI ``{"error": {...}}``, Anthropic
    ``{"type": "error", "error": {...}}`` (the same place)."""
    inner = body.get("error") if isinstance(body, dict) else None
    return inner if isinstance(inner, dict) else {}


def status_error(response: httpx.Response) -> APIStatusError:
    """The exception for an error answer (read it first), in the server's own words."""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = response.text
    inner = _envelope(body)
    text = inner.get("message")
    message = text if isinstance(text, str) else (str(body)[:500] or response.reason_phrase)
    request_id = response.headers.get("x-request-id") or response.headers.get("request-id")
    cls = status_error_class(response.status_code)
    return cls(
        message, status_code=response.status_code, body=body, request_id=request_id,
        type=_text(inner, "type"), code=_text(inner, "code"), param=_text(inner, "param"),
    )  # fmt: skip


def _text(inner: dict[str, Any], key: str) -> str | None:
    value = inner.get(key)
    return value if isinstance(value, str) else None


# -- files -----------------------------------------------------------------------------------


def create_file(source: FileSource, purpose: str, filename: str | None) -> Call[File]:
    body = multipart({"purpose": purpose}, source, filename)
    return Call("POST", "/v1/files", reader(File.from_wire), body=body)


def get_file(file_id: str) -> Call[File]:
    return Call("GET", f"/v1/files/{seg(file_id)}", reader(File.from_wire))


def list_files(query: Params) -> Call[Page[File]]:
    return Call("GET", "/v1/files", page_reader(File.from_wire), params=query)


def delete_file(file_id: str) -> Call[Deleted]:
    return Call("DELETE", f"/v1/files/{seg(file_id)}", reader(Deleted.from_wire))


def file_content(file_id: str) -> Call[bytes]:
    return Call("GET", f"/v1/files/{seg(file_id)}/content", content, accept="*/*")


# -- batches of either dialect ----------------------------------------------------------------

BATCHES = "/v1/batches"
MESSAGE_BATCHES = "/v1/messages/batches"


@dataclass(frozen=True)
class BatchCalls(Generic[B, R]):
    """The calls on one dialect's batches: the same REST resource under two prefixes, read
    into that dialect's batch type ``B`` and result type ``R``."""

    prefix: str
    batch: Callable[[Raw], B]
    result: Callable[[Raw], R]

    def path(self, batch_id: str, action: str = "") -> str:
        return f"{self.prefix}/{seg(batch_id)}{action}"

    def get(self, batch_id: str) -> Call[B]:
        return Call("GET", self.path(batch_id), reader(self.batch))

    def list(self, query: Params) -> Call[Page[B]]:
        return Call("GET", self.prefix, page_reader(self.batch), params=query)

    def cancel(self, batch_id: str) -> Call[B]:
        return Call("POST", self.path(batch_id, "/cancel"), reader(self.batch))

    def delete(self, batch_id: str) -> Call[Deleted]:
        return Call("DELETE", self.path(batch_id), reader(Deleted.from_wire))

    def retry(self, batch_id: str, body: dict[str, Any]) -> Call[B]:
        return Call("POST", self.path(batch_id, "/retry"), reader(self.batch), json=body)


OPENAI = BatchCalls(BATCHES, Batch.from_wire, BatchResult.from_wire)
ANTHROPIC = BatchCalls(MESSAGE_BATCHES, MessageBatch.from_wire, MessageBatchResult.from_wire)


def batch_body(
    endpoint: str, completion_window: str, metadata: Mapping[str, str] | None,
    budget_usd: Budget | None = None,
) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {"endpoint": endpoint, "completion_window": completion_window}
    if metadata is not None:
        body["metadata"] = dict(metadata)
    if budget_usd is not None:
        body["budget_usd"] = budget_usd
    return body


def retry_body(error_codes: Iterable[str] | None, budget_usd: Budget | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if error_codes is not None:
        codes = [error_codes] if isinstance(error_codes, str) else list(error_codes)
        body["error_codes"] = codes
    if budget_usd is not None:
        body["budget_usd"] = budget_usd
    return body


def create_batch(body: dict[str, Any]) -> Call[Batch]:
    return Call("POST", BATCHES, reader(Batch.from_wire), json=body)


def create_message_batch(
    requests: Requests, budget_usd: Budget | None = None
) -> Call[MessageBatch]:
    body = message_requests(requests, budget_usd)
    return Call("POST", MESSAGE_BATCHES, reader(MessageBatch.from_wire), body=body)


def answer(call: Call[T], response: httpx.Response) -> T:
    """The parsed answer to ``call``, or the APIStatusError it is (read the body first)."""
    if response.is_error:
        raise status_error(response)
    return call.parse(response)
