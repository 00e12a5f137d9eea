"""Sans-IO operations of more than one call: creating a batch from requests, waiting for a
batch, paging through a list, paging through results. The sync and async senders drive them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from batchgate.client import _ops
from batchgate.client._bodies import Requests, batch_lines
from batchgate.client._lines import OnBadLine, ResultDecoder
from batchgate.client.errors import APIResponseError, WaitTimeout
from batchgate.client.types import Batch, File, MessageBatch, Page

T = TypeVar("T")
R = TypeVar("R")
B = TypeVar("B", bound=Batch | MessageBatch)


@dataclass(frozen=True)
class Sleep:
    seconds: float


Step = _ops.Call[Any] | Sleep
Flow = Generator[Step, Any, T]  # yields what to do, is sent each call's answer, returns T


# -- create a batch ----------------------------------------------------------------------------


def upload_requests(requests: Requests, endpoint: str) -> _ops.Call[File]:
    """A JSONL path is uploaded as it is; dicts become lines with method and url filled in."""
    if isinstance(requests, str | os.PathLike):
        return _ops.create_file(Path(requests), "batch", None)
    return _ops.create_file(batch_lines(requests, endpoint), "batch", "batch.jsonl")


def create_batch(
    requests: Requests | None, input_file_id: str | None, body: dict[str, Any]
) -> Flow[Batch]:
    """Upload ``requests`` (unless an ``input_file_id`` is given), then create the batch."""
    if (requests is None) == (input_file_id is None):
        raise ValueError("Give exactly one of `requests` and `input_file_id`.")
    if requests is not None:
        uploaded: File = yield upload_requests(requests, body["endpoint"])
        input_file_id = uploaded.id
    batch: Batch = yield _ops.create_batch({"input_file_id": input_file_id, **body})
    return batch


# -- wait for a batch to end -------------------------------------------------------------------


def wait(
    get: _ops.Call[B],
    poll_interval: float,
    timeout: float | None,
    on_progress: Callable[[B], object] | None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Flow[B]:
    """Poll ``get`` until the batch has ended; WaitTimeout once ``timeout`` seconds passed.
    The last poll falls on the deadline, never after it."""
    if poll_interval < 0 or (timeout is not None and timeout < 0):
        raise ValueError("poll_interval and timeout must not be negative.")
    start = clock()
    while True:
        batch: B = yield get
        if on_progress is not None:
            on_progress(batch)
        if batch.ended:
            return batch
        waited = clock() - start
        if timeout is not None and waited >= timeout:
            raise WaitTimeout(batch.id, waited, batch)
        yield Sleep(poll_interval if timeout is None else min(poll_interval, timeout - waited))


# -- list every item ---------------------------------------------------------------------------


class Cursor(Generic[T]):
    """Pages of a list, each asked for with ``key`` = the last (``before_id``: the first) id of
    the page before, until ``has_more`` is false."""

    def __init__(
        self, make: Callable[[_ops.Params], _ops.Call[Page[T]]], query: _ops.Params, key: str
    ) -> None:
        self._make = make
        self._query: dict[str, str | int] = dict(query)
        self._key = key
        self._done = False

    def next_call(self) -> _ops.Call[Page[T]] | None:
        return None if self._done else self._make(self._query)

    def turn(self, page: Page[T]) -> list[T]:
        cursor = page.first_id if self._key == "before_id" else page.last_id
        if not page.has_more or not page.data or cursor is None:
            self._done = True
        elif cursor == self._query.get(self._key):
            raise APIResponseError(f"The server sent the same page again for {self._key}={cursor}.")
        else:
            self._query[self._key] = cursor
        return page.data


def message_cursor(query: _ops.Params) -> Cursor[MessageBatch]:
    key = "before_id" if "before_id" in query else "after_id"
    return Cursor(_ops.ANTHROPIC.list, query, key)


# -- stream the results ------------------------------------------------------------------------

NEXT_AFTER = "x-batchgate-next-after"
HAS_MORE = "x-batchgate-has-more"
MAX_PAGE = 10_000


class ResultPages(Generic[R]):
    """``GET <path>?after=&limit=`` page after page, each body decoded line by line; line
    numbers run on across pages. Call ``finish`` after the last page."""

    def __init__(
        self,
        path: str,
        parse: Callable[[Mapping[str, Any]], R],
        page_size: int,
        on_bad_line: OnBadLine | None,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be from 1 to {MAX_PAGE}, got {page_size}.")
        self._path, self._size = path, page_size
        self._decoder = ResultDecoder(parse, on_bad_line)
        self._after: int | None = 0

    def next_call(self) -> _ops.Call[None] | None:
        if self._after is None:
            return None
        query = {"after": self._after, "limit": self._size}
        return _ops.Call("GET", self._path, _ops.ignore, params=query, accept="application/jsonl")

    def feed(self, chunk: bytes) -> list[R]:
        return self._decoder.feed(chunk)

    def end_page(self, headers: Mapping[str, str]) -> list[R]:
        rest = self._decoder.flush()
        self._after = self._next_after(headers)
        return rest

    def finish(self) -> None:
        self._decoder.finish()

    def _next_after(self, headers: Mapping[str, str]) -> int | None:
        if headers.get(HAS_MORE, "false").strip().lower() != "true":
            return None
        raw = headers.get(NEXT_AFTER, "").strip()
        after = int(raw) if raw.isascii() and raw.isdigit() else None
        if after is None or self._after is None or after <= self._after:
            raise APIResponseError(
                f"{self._path}: the server says there are more results but gives "
                f"{NEXT_AFTER}: {raw!r} after {self._after}."
            )
        return after


def result_pages(
    calls: _ops.BatchCalls[Any, R], batch_id: str, page_size: int, on_bad_line: OnBadLine | None
) -> ResultPages[R]:
    return ResultPages(calls.path(batch_id, "/results"), calls.result, page_size, on_bad_line)


# -- what the senders take -----------------------------------------------------------------


@dataclass(frozen=True)
class Chunks:
    """A body read as it arrives, chunk by chunk (memory does not grow with it)."""

    call: _ops.Call[bytes]


@dataclass(frozen=True)
class Collected(Generic[T]):
    """Every result of ``pages`` as one list (``T`` is that list)."""

    pages: ResultPages[Any]


def collected(pages: ResultPages[R]) -> Collected[list[R]]:
    return Collected(pages)


Answerable = _ops.Call[T] | Flow[T] | Collected[T]  # one value: sent, run or gathered
Streamable = Cursor[T] | ResultPages[T] | Chunks  # items as they come
