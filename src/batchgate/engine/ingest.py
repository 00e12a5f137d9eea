"""Validate an input file streaming, line by line, into request rows (or fail the batch).

Memory is bounded by one chunk of rows; duplicates are found by the database, not a Python set.
A failed validation leaves no request rows behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from batchgate.config import Limits
from batchgate.dialects import DIALECTS
from batchgate.domain.budget import reservation
from batchgate.domain.jsonl import (
    ErrorCollector,
    FileTooLarge,
    LineError,
    ParsedLine,
    iter_lines,
    parse_batch_line,
)
from batchgate.domain.messages import parse_request_line
from batchgate.domain.records import Batch
from batchgate.domain.states import BatchStatus, RowState, on_validated, on_validation_failed
from batchgate.providers.translate import (
    TranslationError,
    chat_request_to_messages,
    messages_request_to_chat,
)
from batchgate.routing import Router
from batchgate.storage.base import Store
from batchgate.storage.blobs import BlobStore
from batchgate.storage.types import IngestRow

CHUNK_ROWS = 2000
_TRANSLATE: dict[tuple[str, str], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("/v1/messages", "openai"): messages_request_to_chat,
    ("/v1/chat/completions", "anthropic"): chat_request_to_messages,
}


class _Ingest:
    def __init__(self, store: Store, batch: Batch, router: Router, limits: Limits) -> None:
        self.store, self.batch, self.router, self.limits = store, batch, router, limits
        self.errors = ErrorCollector(cap=limits.max_errors)
        self.chunk: list[IngestRow] = []
        self.count = 0
        self.failed_now = 0
        self.messages = DIALECTS[batch.dialect].lines == "messages"
        self.untranslatable = "invalid_request_error" if self.messages else "untranslatable"
        self.kinds = {u.name: u.kind for u in router.config.upstreams}
        # The token estimate feeds TPM budgets and cost reservations: skip its cost when no
        # upstream has a TPM limit or a price.
        self.estimate = any(u.tpm > 0 or u.prices for u in router.config.upstreams)
        # Under a budget (the batch's or its tenant's) every row needs a price to be bounded.
        self.budget = (
            "batch" if batch.budget_ticks is not None
            else "tenant" if store.get_budget(batch.tenant) is not None
            else None
        )  # fmt: skip
        self.models: set[str] = set()
        self.upstreams: set[str] = set()  # where its rows go (its batch object shows their health)
        self.blank_lines: list[int] = []

    def add_line(self, line: int, raw: bytes) -> None:
        if self.messages:
            self.add_message(line, raw)
            return
        res = parse_batch_line(raw, line, self.batch.endpoint, estimate=self.estimate)
        if isinstance(res, LineError) and res.code == "blank_line":
            self.blank_lines.append(line)  # an error only if a non-blank line follows
            return
        for blank in self.blank_lines:
            self.errors.add(LineError(
                "blank_line", f"Line {blank}: blank line; every line must be one JSON object.",
                blank,
            ))  # fmt: skip
        self.blank_lines.clear()
        self.count += 1
        if isinstance(res, LineError):
            self.errors.add(res)
        else:  # stored even after an error: the database then finds duplicates in the same pass
            self.chunk.append(self.to_row(res))
            if len(self.chunk) >= CHUNK_ROWS:
                self.flush()

    def add_message(self, line: int, raw: bytes) -> None:
        """A Messages request: a params problem fails that request alone, never the batch."""
        self.count += 1
        cid, parsed = parse_request_line(raw, line)
        if isinstance(parsed, str):
            self.chunk.append(self.failed(line, cid, None, raw, "invalid_request_error", parsed))
        else:
            self.chunk.append(self.to_row(parsed))
        if len(self.chunk) >= CHUNK_ROWS:
            self.flush()

    def failed(
        self, line: int, cid: str, model: str | None, body: bytes, code: str, message: str
    ) -> IngestRow:
        self.failed_now += 1
        return IngestRow(line, cid, RowState.FAILED.value, None, model, body, 0, code, message)

    def to_row(self, p: ParsedLine) -> IngestRow:
        route = self.router.route(p.model)
        if len(self.models) < 2 and p.model:
            self.models.add(p.model)
        if route is None:
            return self.failed(
                p.line, p.custom_id, p.model, p.body_bytes, "model_not_found",
                f"Line {p.line}: no upstream serves model {p.model!r}; "
                "add it to an upstream's models, an alias or a default upstream.",
            )  # fmt: skip
        try:
            body = self.body_for(p, route.model, self.kinds[route.upstream])
        except TranslationError as exc:
            return self.failed(
                p.line, p.custom_id, p.model, p.body_bytes, self.untranslatable,
                f"Line {p.line}: cannot be sent to upstream {route.upstream!r} "
                f"faithfully: {exc.message}",
            )  # fmt: skip
        if route.ticks is None and self.budget is not None:
            return self.failed(
                p.line, p.custom_id, p.model, p.body_bytes, "unpriced_model",
                f"Line {p.line}: model {route.model!r} of provider {route.upstream!r} has no "
                f"price, so the {self.budget}'s budget cannot bound its cost; give it one in "
                "the provider's prices (0 for a free model), or submit without a budget.",
            )  # fmt: skip
        reserve = reservation(p.est_tokens - p.est_output, p.est_output, route.ticks)
        self.upstreams.add(route.upstream)
        return IngestRow(
            p.line, p.custom_id, RowState.QUEUED.value, route.upstream, route.model, body,
            p.est_tokens, ticks=route.ticks, reserve_ticks=reserve,
        )  # fmt: skip

    def body_for(self, p: ParsedLine, model: str, kind: str) -> bytes:
        """The body in the upstream's format, with the routed model name."""
        translate = _TRANSLATE.get((self.batch.endpoint, kind))
        if translate is not None:
            return orjson.dumps(translate({**p.body, "model": model}))
        if kind == "anthropic" and self.batch.endpoint != "/v1/messages":
            raise TranslationError(
                f"{self.batch.endpoint} has no Anthropic equivalent.", param="url"
            )
        return p.body_bytes if model == p.model else orjson.dumps({**p.body, "model": model})

    def flush(self) -> None:
        if self.chunk:
            self.store.insert_rows(self.batch.id, self.chunk, time.time())
            self.chunk = []


def fail_validation(store: Store, batch_id: str, token: str, message: str) -> bool:
    """End a batch whose validation cannot succeed (it failed the same way twice): ``failed``
    with ``message`` as its one error, its rows dropped (``cancelled`` if a cancel was asked:
    cancel always ends a batch). Whether the claim still held."""
    error = LineError("validation_failed", message, None)
    errors = orjson.dumps({"object": "list", "data": [error.to_dict()]}).decode()
    moved = store.advance_batch(
        batch_id, on_validation_failed, now=int(time.time()), token=token,
        values={"errors": errors}, drop_rows=True,
    )  # fmt: skip
    return moved is not None


def requests_blob(batch_id: str) -> str:
    """Where a batch created inline (a ``requests`` list) keeps its requests as JSONL."""
    return f"{batch_id}.requests"


def ingest(
    store: Store,
    blobs: BlobStore,
    batch: Batch,
    token: str,
    router: Router,
    limits: Limits,
    *,
    renew: Callable[[], None] = lambda: None,
) -> bool:
    """Validate ``batch``'s input file into rows; start the batch or fail it. True if started."""
    bid = batch.id
    store.delete_rows(bid)  # a validation that crashed half-way starts over
    job = _Ingest(store, batch, router, limits)
    key: str | None = requests_blob(bid)
    if batch.input_file_id is not None:
        file = store.get_file(batch.input_file_id)
        key = file.blob_key if file else None
    if key is None:
        job.errors.add(LineError("invalid_request", "The input file no longer exists.", None))
    else:
        _read_file(job, blobs, key, limits, renew)
    job.flush()
    if job.count == 0 and not job.errors.count:
        job.errors.add(LineError("empty_file", "The input file has no requests.", None))
    elif job.count:
        _check_duplicates(job, store)  # with the lines' own errors: every problem in one report
    now = int(time.time())
    if job.errors.count:
        errors = orjson.dumps({"object": "list", "data": job.errors.to_list()}).decode()
        store.advance_batch(
            bid, on_validation_failed, now=now, token=token, values={"errors": errors},
            drop_rows=True,
        )  # fmt: skip
        return False
    # An inline batch named its model at create (gateway); a file's is its lines' one model.
    model = batch.model or (next(iter(job.models)) if len(job.models) == 1 else None)
    # in_progress_at is stamped even for a batch cancelled meanwhile: its input was read (see
    # ``claim_batch``), so it is not claimed for validation again.
    counts = {
        "total": job.count, "failed": job.failed_now, "model": model, "in_progress_at": now,
        "upstreams": ",".join(sorted(job.upstreams)) or None,
    }  # fmt: skip
    moved = store.advance_batch(bid, on_validated, now=now, token=token, values=counts)
    return moved == BatchStatus.IN_PROGRESS


def _read_file(
    job: _Ingest, blobs: BlobStore, key: str, limits: Limits, renew: Callable[[], None]
) -> None:
    try:
        fh = blobs.open(key)
    except FileNotFoundError:
        job.errors.add(LineError("invalid_request", "The input file's content is missing.", None))
        return
    with fh:
        try:
            for line, raw in iter_lines(fh, max_bytes=limits.max_file_bytes):
                if job.count >= limits.max_lines and raw.strip():  # trailing blanks are no task
                    job.errors.add(LineError(
                        "too_many_tasks",
                        f"The input file has more than {limits.max_lines} requests "
                        f"(line {line} is over the limit).", None,
                    ))  # fmt: skip
                    return
                job.add_line(line, raw)
                if line % 20_000 == 0:
                    renew()
        except FileTooLarge as exc:
            job.errors.add(LineError("file_too_large", exc.message, None))


def _check_duplicates(job: _Ingest, store: Store) -> None:
    dups, total = store.duplicate_custom_ids(job.batch.id, job.errors.cap)
    found = [_duplicate(custom_id, line) for custom_id, line in dups]
    job.errors.add_found(found, total)


def _duplicate(custom_id: str, line: int) -> LineError:
    return LineError(
        "duplicate_custom_id",
        f"Line {line}: custom_id {custom_id!r} is used by an earlier line; "
        "each custom_id must be unique within the batch.",
        line,
        "custom_id",
    )
