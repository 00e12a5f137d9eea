"""The resources of both clients, written once: each method is a sans-IO spec (see _shell)
that ``Client`` runs blocking and ``AsyncClient`` runs async (its answers are awaited)."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypeVar

import httpx

from batchgate.client import _flows, _ops
from batchgate.client._bodies import Budget, FileSource, Requests
from batchgate.client._flows import Chunks, Collected, Cursor, Flow, ResultPages
from batchgate.client._http import Settings
from batchgate.client._lines import OnBadLine
from batchgate.client._shell import Resource, Snd, answer, stream
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


class Files(Resource[Snd]):
    @answer
    def create(
        self, file: FileSource, *, purpose: str = "batch", filename: str | None = None
    ) -> _ops.Call[File]:
        """Upload ``file``: a path (streamed from disk), bytes, a binary file object, or an
        iterable of dicts (each one JSONL line, generated as it is sent)."""
        return _ops.create_file(file, purpose, filename)

    @answer
    def get(self, file_id: str) -> _ops.Call[File]:
        return _ops.get_file(file_id)

    @answer
    def list(
        self,
        *,
        limit: int | None = None,
        after: str | None = None,
        purpose: str | None = None,
        order: str | None = None,
    ) -> _ops.Call[Page[File]]:
        return _ops.list_files(_ops.params(limit=limit, after=after, purpose=purpose, order=order))

    @stream
    def list_all(
        self,
        *,
        limit: int | None = None,
        after: str | None = None,
        purpose: str | None = None,
        order: str | None = None,
    ) -> Cursor[File]:
        """Every file after ``after``, page by page (``limit`` is the page size)."""
        query = _ops.params(limit=limit, after=after, purpose=purpose, order=order)
        return Cursor(_ops.list_files, query, "after")

    @answer
    def delete(self, file_id: str) -> _ops.Call[Deleted]:
        return _ops.delete_file(file_id)

    @answer
    def content(self, file_id: str) -> _ops.Call[bytes]:
        return _ops.file_content(file_id)

    @stream
    def content_stream(self, file_id: str) -> Chunks:
        """The content in chunks as they arrive: memory does not grow with the file."""
        return Chunks(_ops.file_content(file_id))


class _Batches(Resource[Snd], Generic[Snd, B, R]):
    """What both dialects' batches do alike."""

    _calls: _ops.BatchCalls[B, R]

    @answer
    def get(self, batch_id: str) -> _ops.Call[B]:
        return self._calls.get(batch_id)

    @answer
    def cancel(self, batch_id: str) -> _ops.Call[B]:
        return self._calls.cancel(batch_id)

    @answer
    def delete(self, batch_id: str) -> _ops.Call[Deleted]:
        """Remove an ended batch and its results."""
        return self._calls.delete(batch_id)

    @answer
    def retry(
        self,
        batch_id: str,
        *,
        error_codes: Iterable[str] | None = None,
        budget_usd: Budget | None = None,
    ) -> _ops.Call[B]:
        """A new batch of this ended batch's requests that ended without a result (only
        those with ``error_codes`` when given), its original lines in input order; its
        metadata's ``retry_of`` (a Message Batch's ``retry_of`` field) names this one.
        ``budget_usd`` replaces the original's budget."""
        return self._calls.retry(batch_id, _ops.retry_body(error_codes, budget_usd))

    @answer
    def wait_for(
        self,
        batch_id: str,
        *,
        poll_interval: float = 1.0,
        timeout: float | None = None,
        on_progress: Callable[[B], object] | None = None,
    ) -> Flow[B]:
        """Poll until the batch has ended, calling ``on_progress`` after every poll;
        WaitTimeout after ``timeout`` seconds."""
        return _flows.wait(self._calls.get(batch_id), poll_interval, timeout, on_progress)

    @stream
    def results_stream(
        self, batch_id: str, *, page_size: int = 1000, on_bad_line: OnBadLine | None = None
    ) -> ResultPages[R]:
        """Every finished request's result line, in input order, page by page; works while
        the batch runs (what has finished so far). A line that cannot be read goes to
        ``on_bad_line``, else all of them raise one ResultDecodeError after the last result."""
        return _flows.result_pages(self._calls, batch_id, page_size, on_bad_line)

    @answer
    def results(
        self, batch_id: str, *, page_size: int = 1000, on_bad_line: OnBadLine | None = None
    ) -> Collected[builtins.list[R]]:
        """``results_stream`` as a list."""
        pages = _flows.result_pages(self._calls, batch_id, page_size, on_bad_line)
        return _flows.collected(pages)


class Batches(_Batches[Snd, Batch, BatchResult]):
    """OpenAI-dialect batches."""

    _calls = _ops.OPENAI

    @answer
    def create(
        self,
        requests: Requests | None = None,
        *,
        input_file_id: str | None = None,
        endpoint: str = "/v1/chat/completions",
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
        budget_usd: Budget | None = None,
    ) -> Flow[Batch]:
        """A batch from ``requests`` (dicts or a JSONL path, uploaded first) or an uploaded
        ``input_file_id``: exactly one of them. ``budget_usd``: the most the batch may spend;
        once reached, the requests not yet sent end with ``budget_exceeded``."""
        body = _ops.batch_body(endpoint, completion_window, metadata, budget_usd)
        return _flows.create_batch(requests, input_file_id, body)

    @answer
    def list(self, *, limit: int | None = None, after: str | None = None) -> _ops.Call[Page[Batch]]:
        return self._calls.list(_ops.params(limit=limit, after=after))

    @stream
    def list_all(self, *, limit: int | None = None, after: str | None = None) -> Cursor[Batch]:
        return Cursor(self._calls.list, _ops.params(limit=limit, after=after), "after")


class MessageBatches(_Batches[Snd, MessageBatch, MessageBatchResult]):
    """Anthropic-dialect Message Batches."""

    _calls = _ops.ANTHROPIC

    @answer
    def create(
        self, requests: Requests, *, budget_usd: Budget | None = None
    ) -> _ops.Call[MessageBatch]:
        """A Message Batch from ``{"custom_id", "params"}`` dicts or a JSONL path; the body
        is generated as it is sent. ``budget_usd`` as for ``batches.create``."""
        return _ops.create_message_batch(requests, budget_usd)

    @answer
    def list(
        self,
        *,
        limit: int | None = None,
        after_id: str | None = None,
        before_id: str | None = None,
    ) -> _ops.Call[Page[MessageBatch]]:
        return self._calls.list(_ops.params(limit=limit, after_id=after_id, before_id=before_id))

    @stream
    def list_all(
        self,
        *,
        limit: int | None = None,
        after_id: str | None = None,
        before_id: str | None = None,
    ) -> Cursor[MessageBatch]:
        """Every batch after ``after_id`` (or, given ``before_id``, before it), page by page."""
        return _flows.message_cursor(
            _ops.params(limit=limit, after_id=after_id, before_id=before_id)
        )


class Messages(Resource[Snd]):
    def __init__(self, sender: Snd) -> None:
        super().__init__(sender)
        self.batches: MessageBatches[Snd] = MessageBatches(sender)


Transport = TypeVar("Transport", bound=httpx.BaseTransport | httpx.AsyncBaseTransport)
Http = TypeVar("Http", bound=httpx.Client | httpx.AsyncClient)


class BaseClient(Generic[Snd, Transport, Http]):
    """What ``Client`` and ``AsyncClient`` share: the arguments, the resources, the URL.
    ``Transport`` and ``Http`` are the httpx types each takes."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: Transport | None = None,
        http_client: Http | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        settings = Settings.resolve(base_url, api_key, headers, http_client, transport)
        http = http_client or self._new_http(transport=transport, timeout=timeout)
        self._sender: Snd = self._new_sender(http, settings, owned=http_client is None)
        self.files: Files[Snd] = Files(self._sender)
        self.batches: Batches[Snd] = Batches(self._sender)
        self.messages: Messages[Snd] = Messages(self._sender)

    _new_http: Callable[..., Http]  # the httpx client class and sender class of each
    _new_sender: Callable[..., Snd]

    @property
    def base_url(self) -> str:
        return self._sender.settings.root
