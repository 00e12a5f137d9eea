"""The async client: ``AsyncClient`` and its resources, thin shells that send sans-IO calls."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Generic, TypeVar

import httpx

from batchgate.client import _flows, _ops
from batchgate.client._bodies import Budget, FileSource, Requests
from batchgate.client._http import AsyncSender, Settings
from batchgate.client._lines import OnBadLine
from batchgate.client.types import (
    Batch,
    BatchResult,
    Deleted,
    File,
    MessageBatch,
    MessageBatchResult,
    Page,
)

B = TypeVar("B", bound=Batch | MessageBatch)
R = TypeVar("R", bound=BatchResult | MessageBatchResult)


class Files:
    def __init__(self, sender: AsyncSender) -> None:
        self._send = sender

    async def create(
        self, file: FileSource, *, purpose: str = "batch", filename: str | None = None
    ) -> File:
        """Upload ``file``: a path (streamed from disk), bytes, a binary file object, or an
        iterable of dicts (each one JSONL line, generated as it is sent)."""
        return await self._send.call(_ops.create_file(file, purpose, filename))

    async def get(self, file_id: str) -> File:
        return await self._send.call(_ops.get_file(file_id))

    async def list(
        self,
        *,
        limit: int | None = None,
        after: str | None = None,
        purpose: str | None = None,
        order: str | None = None,
    ) -> Page[File]:
        query = _ops.params(limit=limit, after=after, purpose=purpose, order=order)
        return await self._send.call(_ops.list_files(query))

    def list_all(
        self,
        *,
        limit: int | None = None,
        after: str | None = None,
        purpose: str | None = None,
        order: str | None = None,
    ) -> AsyncIterator[File]:
        """Every file after ``after``, page by page (``limit`` is the page size)."""
        query = _ops.params(limit=limit, after=after, purpose=purpose, order=order)
        return self._send.paginate(_flows.Cursor(_ops.list_files, query, "after"))

    async def delete(self, file_id: str) -> Deleted:
        return await self._send.call(_ops.delete_file(file_id))

    async def content(self, file_id: str) -> bytes:
        return await self._send.call(_ops.file_content(file_id))

    def content_stream(self, file_id: str) -> AsyncIterator[bytes]:
        """The content in chunks as they arrive: memory does not grow with the file."""
        return self._send.chunks(_ops.file_content(file_id))


class _Batches(Generic[B, R]):
    """What both dialects' batches do alike."""

    def __init__(self, sender: AsyncSender, calls: _ops.BatchCalls[B, R]) -> None:
        self._send = sender
        self._calls: _ops.BatchCalls[B, R] = calls

    async def get(self, batch_id: str) -> B:
        return await self._send.call(self._calls.get(batch_id))

    async def cancel(self, batch_id: str) -> B:
        return await self._send.call(self._calls.cancel(batch_id))

    async def delete(self, batch_id: str) -> Deleted:
        """Remove an ended batch and its results."""
        return await self._send.call(self._calls.delete(batch_id))

    async def wait_for(
        self,
        batch_id: str,
        *,
        poll_interval: float = 1.0,
        timeout: float | None = None,
        on_progress: Callable[[B], object] | None = None,
    ) -> B:
        """Poll until the batch has ended, calling ``on_progress`` after every poll;
        WaitTimeout after ``timeout`` seconds."""
        flow = _flows.wait(self._calls.get(batch_id), poll_interval, timeout, on_progress)
        return await self._send.run(flow)

    def results_stream(
        self, batch_id: str, *, page_size: int = 1000, on_bad_line: OnBadLine | None = None
    ) -> AsyncIterator[R]:
        """Every finished request's result line, in input order, page by page; works while
        the batch runs (what has finished so far). A line that cannot be read goes to
        ``on_bad_line``, else all of them raise one ResultDecodeError after the last result."""
        pages = _flows.result_pages(self._calls, batch_id, page_size, on_bad_line)
        return self._send.results(pages)

    async def results(
        self, batch_id: str, *, page_size: int = 1000, on_bad_line: OnBadLine | None = None
    ) -> builtins.list[R]:
        """``results_stream`` as a list."""
        stream = self.results_stream(batch_id, page_size=page_size, on_bad_line=on_bad_line)
        return [result async for result in stream]


class Batches(_Batches[Batch, BatchResult]):
    """OpenAI-dialect batches."""

    def __init__(self, sender: AsyncSender) -> None:
        super().__init__(sender, _ops.OPENAI)

    async def create(
        self,
        requests: Requests | None = None,
        *,
        input_file_id: str | None = None,
        endpoint: str = "/v1/chat/completions",
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
        budget_usd: Budget | None = None,
    ) -> Batch:
        """A batch from ``requests`` (dicts or a JSONL path, uploaded first) or an uploaded
        ``input_file_id``: exactly one of them. ``budget_usd``: the most the batch may spend;
        once reached, the requests not yet sent end with ``budget_exceeded``."""
        body = _ops.batch_body(endpoint, completion_window, metadata, budget_usd)
        return await self._send.run(_flows.create_batch(requests, input_file_id, body))

    async def list(self, *, limit: int | None = None, after: str | None = None) -> Page[Batch]:
        return await self._send.call(self._calls.list(_ops.params(limit=limit, after=after)))

    def list_all(
        self, *, limit: int | None = None, after: str | None = None
    ) -> AsyncIterator[Batch]:
        query = _ops.params(limit=limit, after=after)
        return self._send.paginate(_flows.Cursor(self._calls.list, query, "after"))


class MessageBatches(_Batches[MessageBatch, MessageBatchResult]):
    """Anthropic-dialect Message Batches."""

    def __init__(self, sender: AsyncSender) -> None:
        super().__init__(sender, _ops.ANTHROPIC)

    async def create(self, requests: Requests, *, budget_usd: Budget | None = None) -> MessageBatch:
        """A Message Batch from ``{"custom_id", "params"}`` dicts or a JSONL path; the body
        is generated as it is sent. ``budget_usd`` as for ``batches.create``."""
        return await self._send.call(_ops.create_message_batch(requests, budget_usd))

    async def list(
        self,
        *,
        limit: int | None = None,
        after_id: str | None = None,
        before_id: str | None = None,
    ) -> Page[MessageBatch]:
        query = _ops.params(limit=limit, after_id=after_id, before_id=before_id)
        return await self._send.call(self._calls.list(query))

    def list_all(
        self,
        *,
        limit: int | None = None,
        after_id: str | None = None,
        before_id: str | None = None,
    ) -> AsyncIterator[MessageBatch]:
        """Every batch after ``after_id`` (or, given ``before_id``, before it), page by page."""
        query = _ops.params(limit=limit, after_id=after_id, before_id=before_id)
        return self._send.paginate(_flows.message_cursor(query))


class Messages:
    def __init__(self, sender: AsyncSender) -> None:
        self.batches = MessageBatches(sender)


class AsyncClient:
    """An async batchgate client; see the package docstring for the arguments."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        settings = Settings.resolve(base_url, api_key, headers, http_client, transport)
        http = http_client or httpx.AsyncClient(transport=transport, timeout=timeout)
        self._sender = AsyncSender(http, settings, owned=http_client is None)
        self.files = Files(self._sender)
        self.batches = Batches(self._sender)
        self.messages = Messages(self._sender)

    @property
    def base_url(self) -> str:
        return self._sender.settings.root

    async def aclose(self) -> None:
        """Close the connection pool (not that of an ``http_client`` you passed in)."""
        await self._sender.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
