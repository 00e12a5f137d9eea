"""What a dialect is to the rest of batchgate: a create check that turns a request body into a
draft batch, how its input lines are read, its result renderer, its status projection (the
batch object it answers with) and its error envelope. Each dialect's folder (``openai/``,
``anthropic/``, ``gateway/``, ``jobs/``) defines one ``Dialect``; ``DIALECTS`` in
``dialects/__init__.py`` is the one table the service, the engine and the API reach them
through. Nothing here knows HTTP: the API wraps what these return in responses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from batchgate.domain.records import Batch, FileRecord, FinishedRow

__all__ = [
    "ApiError",
    "CreateContext",
    "Dialect",
    "Draft",
    "Envelope",
    "Project",
    "RenderResult",
    "View",
]

RenderResult = Callable[[str, FinishedRow], tuple[bool, bytes]]
"""One finished row as a result line of the dialect: (belongs to the output file, bytes)."""


@dataclass(frozen=True, slots=True)
class View:
    """What a status projection may know of the request it answers: how the client reached
    this server (for absolute URLs) and which provider a model routes to."""

    base_url: str
    provider_of: Callable[[str | None], str | None]


Project = Callable[[Batch, View], dict[str, Any]]
"""A batch as the dialect's wire object (the OpenAI Batch, the Anthropic MessageBatch, …)."""


@dataclass(frozen=True, slots=True)
class ApiError:
    """An error answer, before any dialect's envelope is put around it."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    request_id: str | None = None


Envelope = Callable[[ApiError], dict[str, Any]]
"""An error as the dialect's error body."""


class CreateContext(Protocol):
    """What a create check may ask of the server (the service provides it)."""

    @property
    def max_lines(self) -> int: ...

    def provider_of(self, model: str | None) -> str | None: ...

    def batch_file(self, tenant: str, file_id: Any) -> FileRecord | None: ...


@dataclass(frozen=True, slots=True)
class Draft:
    """A checked create: the batch to insert and, for an inline batch, its requests as JSONL
    lines (stored as the batch's requests blob). ``ingest_now``: the service writes the rows
    before it answers (every id handed out then addresses a row), rather than a worker."""

    batch: Batch
    lines: Sequence[bytes] | None = None
    ingest_now: bool = False


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    create: Callable[[CreateContext, str, Any], Draft]
    render_result: RenderResult
    envelope: Envelope
    # None for a dialect whose answers are not batch objects (jobs answer with job objects).
    project: Project | None = None
    # How ingest reads its lines: "batch" (OpenAI batch lines; a bad line fails the whole
    # batch with located errors) or "messages" (Anthropic ``{custom_id, params}`` requests; a
    # bad one fails that request alone, as an error result).
    lines: Literal["batch", "messages"] = "batch"
    # URL prefixes whose errors this dialect's envelope wraps (the OpenAI one wraps the rest).
    error_paths: tuple[str, ...] = ()
