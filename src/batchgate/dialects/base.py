"""What a dialect is to the service and the engine: a create check that turns a request body
into a draft batch, a result renderer, and how its input lines are read. Each dialect module
(``openai``, ``anthropic``, ``gateway``, ``jobs``) defines one ``Dialect``; ``DIALECTS`` in
``dialects/__init__.py`` is the one table the service and the engine reach them through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from batchgate.domain.records import Batch, FileRecord, FinishedRow

__all__ = ["CreateContext", "Dialect", "Draft", "RenderResult"]

RenderResult = Callable[[str, FinishedRow], tuple[bool, bytes]]
"""One finished row as a result line of the dialect: (belongs to the output file, bytes)."""


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
    # A bad line fails that request alone (an error result), not the whole batch.
    lenient_lines: bool = False
