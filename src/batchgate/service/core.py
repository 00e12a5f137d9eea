"""The use-cases shared by every dialect and the CLI, synchronous: files, batch creation,
reads, cancel and delete. ``Service`` (``service/__init__.py``) runs them on the store's
threads for the API; ``batchgate run`` calls them directly. They raise ClientError subclasses
for the caller's mistakes, which each dialect renders in its own envelope.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

from batchgate import ids
from batchgate.config import Config
from batchgate.dialects import DIALECTS, Draft
from batchgate.dialects.jobs.create import CLAIM_TTL
from batchgate.domain import jobs as jobs_domain
from batchgate.domain.jsonl import NUL
from batchgate.domain.records import (
    Batch,
    FileRecord,
    FinishedRow,
    RequestRecord,
    UpstreamHealth,
)
from batchgate.domain.states import on_cancel
from batchgate.engine.ingest import ingest, requests_blob
from batchgate.errors import (
    BatchNotFound,
    FileNotFound,
    InvalidRequest,
    JobNotFound,
    PayloadTooLarge,
)
from batchgate.routing import Router
from batchgate.service import retry
from batchgate.storage.base import Store
from batchgate.storage.blobs import BlobStore

FILE_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
MAX_ANY_FILE = 512 * 1024 * 1024
DEFAULT_FILE_TTL = 30 * 86400


Dialects = str | Collection[str]


@dataclass(frozen=True, slots=True)
class ResultsPage:
    body: bytes  # JSONL, one result line per finished row
    next_after: int  # the input line to read after for the next page
    has_more: bool


@dataclass
class Operations:
    store: Store
    blobs: BlobStore
    config: Config

    @cached_property
    def router(self) -> Router:
        return Router(self.config)

    def provider_of(self, model: str | None) -> str | None:
        """The upstream that ``model`` routes to (None: none does)."""
        route = self.router.route(model) if model else None
        return route.upstream if route is not None else None

    # -- files ---------------------------------------------------------------------------------

    def upload_file(
        self, tenant: str, *, filename: str, purpose: str, src: BinaryIO,
        expires_after: int | None = None,
    ) -> FileRecord:  # fmt: skip
        if purpose not in FILE_PURPOSES:
            raise InvalidRequest(
                f"Invalid purpose {purpose!r}; expected one of {sorted(FILE_PURPOSES)}.",
                param="purpose",
            )
        if expires_after is not None and not 3600 <= expires_after <= 2_592_000:
            raise InvalidRequest(
                "expires_after[seconds] must be between 3600 and 2592000.",
                param="expires_after[seconds]",
            )
        if NUL in filename:
            raise InvalidRequest(
                "file: the filename contains a NUL character (\\u0000).", param="file"
            )
        fid = ids.file_id()
        limit = self.config.limits.max_file_bytes if purpose == "batch" else MAX_ANY_FILE
        size = self.blobs.put_stream(fid, src, limit=limit)
        if size is None:
            raise InvalidRequest(
                f"File is larger than {limit} bytes, the limit for purpose {purpose!r}.",
                param="file", code="file_too_large",
            )  # fmt: skip
        now = int(time.time())
        file = FileRecord(
            id=fid, tenant=tenant, filename=filename or "upload", purpose=purpose, bytes=size,
            created_at=now, blob_key=fid, expires_at=now + (expires_after or DEFAULT_FILE_TTL),
        )  # fmt: skip
        self.store.insert_file(file)
        return file

    def get_file(self, tenant: str | None, file_id: str) -> FileRecord:
        file = self.store.get_file(file_id, tenant)
        if file is None:
            raise FileNotFound(f"No such File object: {file_id}", param="id")
        return file

    def list_files(
        self, tenant: str | None, *, purpose: str | None, after: str | None, limit: int, order: str
    ) -> tuple[list[FileRecord], bool]:
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be 'asc' or 'desc'.", param="order")
        return self.store.list_files(tenant, purpose=purpose, after=after, limit=limit, order=order)

    def delete_file(self, tenant: str | None, file_id: str) -> FileRecord:
        file = self.store.delete_file(file_id, tenant)
        if file is None:
            raise FileNotFound(f"No such File object: {file_id}", param="id")
        self.blobs.delete(file.blob_key)
        return file

    # -- batches -------------------------------------------------------------------------------

    @property
    def max_lines(self) -> int:
        return self.config.limits.max_lines

    def batch_file(self, tenant: str, file_id: Any) -> FileRecord | None:
        """The tenant's file ``file_id`` (a create check's input file), None if there is none."""
        if not isinstance(file_id, str) or NUL in file_id:
            return None
        return self.store.get_file(file_id, tenant)

    def create_batch(self, dialect: str, tenant: str, body: Any) -> Batch:
        """A batch of ``dialect``, checked by the dialect's create check (``dialects/``); an
        inline batch's requests are kept as its requests blob. The batch is answered as
        created: a worker may already be validating it."""
        return self.insert_draft(DIALECTS[dialect].create(self, tenant, body))

    def insert_draft(self, draft: Draft) -> Batch:
        """Store a checked create (its inline requests first) and answer its batch."""
        if draft.lines is not None:
            self._store_requests(draft.batch.id, draft.lines)
        self.store.insert_batch(draft.batch)
        if draft.ingest_now:
            self._ingest_now(draft.batch)
        return draft.batch

    def retry_batch(
        self, tenant: str | None, batch_id: str, body: Any, *, dialect: Dialects
    ) -> Batch:
        """A new batch of an ended batch's failed lines (``service/retry.py``)."""
        return retry.retry_batch(self, tenant, batch_id, body, dialect=dialect)

    def retry_jobs(self, tenant: str | None, body: Any) -> Batch:
        """One new jobs submission of failed jobs (``service/retry.py``)."""
        return retry.retry_jobs(self, tenant, body)

    def add_batch_file(self, tenant: str, key: str, filename: str) -> FileRecord:
        """A file of purpose ``batch`` for blob ``key``, which the server wrote itself."""
        now = int(time.time())
        file = FileRecord(
            id=key, tenant=tenant, filename=filename, purpose="batch",
            bytes=self.blobs.size(key), created_at=now, blob_key=key,
            expires_at=now + DEFAULT_FILE_TTL,
        )  # fmt: skip
        self.store.insert_file(file)
        return file

    def _ingest_now(self, batch: Batch) -> None:
        """Write a batch's rows now, under the claim its draft holds (see ``dialects/jobs``)."""
        token = batch.claim_token
        assert token is not None

        def renew() -> None:
            self.store.renew_claim(batch.id, token, time.time() + CLAIM_TTL)

        ingest(self.store, self.blobs, batch, token, self.router, self.config.limits, renew=renew)

    def get_job(self, tenant: str | None, job_id: str) -> RequestRecord:
        """A job's row, with its batch's ``created_at``."""
        key = jobs_domain.parse_job_id(job_id)
        row = self.store.get_request(*key, dialect="jobs", tenant=tenant) if key else None
        if row is None:
            raise JobNotFound(f"No job found with id '{job_id}'.", param="job_id")
        return row

    def list_jobs(
        self, tenant: str | None, *, after: str | None, limit: int
    ) -> tuple[list[RequestRecord], bool]:
        """Jobs newest first; ``after`` a job id: the page older than that job."""
        before = jobs_domain.parse_job_id(after) if after else None
        if after and before is None:
            raise InvalidRequest(f"after: {after!r} is not a job id.", param="after")
        return self.store.list_requests(tenant, dialect="jobs", before=before, limit=limit)

    def _store_requests(self, batch_id: str, lines: Sequence[bytes]) -> None:
        """An inline batch's requests as its JSONL blob; over the size limit nothing is kept."""
        limit = self.config.limits.max_file_bytes
        with self.blobs.writer(requests_blob(batch_id)) as out:
            for line in lines:
                out.write(line)
                out.write(b"\n")
            if out.tell() > limit:  # raising here leaves no blob behind
                raise PayloadTooLarge(
                    f"The requests take {out.tell()} bytes; this server takes at most "
                    f"{limit} bytes per batch."
                )

    def delete_batch(self, tenant: str | None, batch_id: str, *, dialect: Dialects) -> None:
        """Remove an ended batch with its rows and result files (an input file stays)."""
        batch = self.get_batch(tenant, batch_id, dialect=dialect)
        if not batch.ended:
            raise InvalidRequest(
                f"Batch {batch_id} is still being processed; cancel it and wait until it has "
                "ended before deleting it."
            )
        self.store.delete_batch(batch_id)
        for key in (batch.output_file_id, batch.error_file_id, requests_blob(batch_id)):
            if key:
                self.blobs.delete(key)

    def results_page(
        self, tenant: str | None, batch_id: str, *, dialect: str, after: int, limit: int
    ) -> ResultsPage:
        """The result lines of finished rows after input line ``after``, in input order, in
        the batch's own format: partial results while it runs, every line once it ended."""
        self.get_batch(tenant, batch_id, dialect=dialect)
        rows = self.store.rows_after(batch_id, after, limit + 1, finished_only=True)
        page, render = rows[:limit], DIALECTS[dialect].render_result
        body = b"".join(render(batch_id, row)[1] for row in page)
        return ResultsPage(body, page[-1].line if page else after, len(rows) > limit)

    def finished_rows(self, batch_id: str, after: int, limit: int) -> list[FinishedRow]:
        """Up to ``limit`` finished rows after input line ``after`` (a batch already read)."""
        return self.store.rows_after(batch_id, after, limit, finished_only=True)

    def results_file(self, tenant: str | None, batch_id: str, *, dialect: str) -> Path:
        """An ended batch's whole results file (its output file), to send as it is."""
        batch = self.get_batch(tenant, batch_id, dialect=dialect)
        if not batch.ended or not batch.output_file_id:
            raise InvalidRequest(f"Batch {batch_id} has not ended yet; its results are not ready.")
        key = batch.output_file_id
        return self._blob(key, f"The results of batch {batch_id} are gone.")

    def file_content(self, tenant: str | None, file_id: str) -> Path:
        file = self.get_file(tenant, file_id)
        return self._blob(file.blob_key, f"The content of file {file_id} is gone.")

    def _blob(self, key: str, gone: str) -> Path:
        """Where blob ``key`` lies; FileNotFound saying ``gone`` when its content is missing
        (sending a missing path would fail with a 500)."""
        path = self.blobs.path(key)
        if not path.is_file():
            raise FileNotFound(gone, param="id")
        return path

    def get_batch(
        self, tenant: str | None, batch_id: str, *, dialect: Dialects = "openai"
    ) -> Batch:
        """The batch, if it is of ``dialect`` (one name, or any of several)."""
        batch = self.store.get_batch(batch_id, tenant)
        wanted = (dialect,) if isinstance(dialect, str) else dialect
        if batch is None or batch.dialect not in wanted:
            raise BatchNotFound(f"No batch found with id '{batch_id}'.", param="batch_id")
        return self._with_health([batch])[0]

    def _with_health(self, found: list[Batch]) -> list[Batch]:
        """The batches with their upstreams' health attached (one read of a tiny table)."""
        if not any(b.upstreams for b in found):
            return found
        down = self.store.unavailable_upstreams(time.time())
        return [
            dataclasses.replace(b, health=tuple(
                down.get(name) or UpstreamHealth(name, "available")
                for name in b.upstreams.split(",")
            )) if b.upstreams else b
            for b in found
        ]  # fmt: skip

    def list_batches(
        self, tenant: str | None, *, after: str | None, limit: int, dialect: Dialects,
        before: str | None = None,
    ) -> tuple[list[Batch], bool]:  # fmt: skip
        if after and before:
            raise InvalidRequest("Give after_id or before_id, not both.", param="before_id")
        found, more = self.store.list_batches(
            tenant, after=after, before=before, limit=limit, dialect=dialect
        )
        return self._with_health(found), more

    def cancel_batch(
        self, tenant: str | None, batch_id: str, *, dialect: Dialects = "openai"
    ) -> Batch:
        """Ask a batch to stop (``cancelling``; asking again changes nothing); queued rows end
        as cancelled, rows in flight finish."""
        self.get_batch(tenant, batch_id, dialect=dialect)
        moved = self.store.advance_batch(batch_id, on_cancel, now=int(time.time()), tenant=tenant)
        if moved is None:
            raise BatchNotFound(f"No batch found with id '{batch_id}'.", param="batch_id")
        return self.get_batch(tenant, batch_id, dialect=dialect)
