"""Use-cases shared by every dialect and the CLI: files, batch creation and cancel.

Synchronous (the API runs them on the store's threads); they raise ClientError subclasses for
the caller's mistakes, which each dialect renders in its own envelope.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, BinaryIO

import orjson

from batchgate import ids
from batchgate.config import Config
from batchgate.domain import gateway
from batchgate.domain import jobs as jobs_domain
from batchgate.domain.budget import BUDGET_FIELD, parse_budget_usd
from batchgate.domain.messages import check_requests
from batchgate.domain.states import TERMINAL
from batchgate.engine.finalize import RENDERERS
from batchgate.engine.ingest import ingest, requests_blob
from batchgate.errors import (
    BatchNotFound,
    FileNotFound,
    InvalidRequest,
    InvalidTransition,
    JobNotFound,
    PayloadTooLarge,
)
from batchgate.routing import Router
from batchgate.storage.blobs import BlobStore
from batchgate.storage.schema import batches
from batchgate.storage.sql import Store

FILE_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")
MAX_ANY_FILE = 512 * 1024 * 1024
DEFAULT_FILE_TTL = 30 * 86400
BATCH_DEFAULTS: dict[str, Any] = {
    c.name: (0 if c.server_default is not None and c.name != "tenant" else None)
    for c in batches.columns
}
_WINDOW = re.compile(r"^(\d{1,3})h$")
JOBS_CLAIM_TTL = 60.0  # the API's hold on a jobs batch while it writes its rows


Dialects = str | Collection[str]


@dataclass(frozen=True, slots=True)
class ResultsPage:
    body: bytes  # JSONL, one result line per finished row
    next_after: int  # the input line to read after for the next page
    has_more: bool


@dataclass
class Service:
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
    ) -> dict[str, Any]:  # fmt: skip
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
        fid = ids.file_id()
        limit = self.config.limits.max_file_bytes if purpose == "batch" else MAX_ANY_FILE
        size = self.blobs.put_stream(fid, src, limit=limit)
        if size is None:
            raise InvalidRequest(
                f"File is larger than {limit} bytes, the limit for purpose {purpose!r}.",
                param="file", code="file_too_large",
            )  # fmt: skip
        now = int(time.time())
        row = {
            "id": fid, "tenant": tenant, "filename": filename or "upload", "purpose": purpose,
            "bytes": size, "created_at": now, "status": "processed", "blob_key": fid,
            "expires_at": now + (expires_after or DEFAULT_FILE_TTL),
        }  # fmt: skip
        self.store.insert_file(row)
        return row

    def get_file(self, tenant: str | None, file_id: str) -> dict[str, Any]:
        row = self.store.get_file(file_id, tenant)
        if row is None:
            raise FileNotFound(f"No such File object: {file_id}", param="id")
        return row

    def delete_file(self, tenant: str | None, file_id: str) -> dict[str, Any]:
        row = self.store.delete_file(file_id, tenant)
        if row is None:
            raise FileNotFound(f"No such File object: {file_id}", param="id")
        self.blobs.delete(row["blob_key"])
        return row

    def open_file(self, tenant: str | None, file_id: str) -> tuple[dict[str, Any], BinaryIO]:
        row = self.get_file(tenant, file_id)
        try:
            return row, self.blobs.open(row["blob_key"])
        except FileNotFoundError:
            raise FileNotFound(f"The content of file {file_id} is gone.", param="id") from None

    # -- batches -------------------------------------------------------------------------------

    def create_openai_batch(self, tenant: str, body: Any) -> dict[str, Any]:
        """Check the create request (not the file: that is validated by a worker, streaming)."""
        if not isinstance(body, dict):
            raise InvalidRequest("The request body must be a JSON object.")
        for name in ("input_file_id", "endpoint", "completion_window"):
            if body.get(name) is None:
                raise InvalidRequest(
                    f"Missing required parameter: '{name}'.",
                    param=name, code="missing_required_parameter",
                )  # fmt: skip
        endpoint = _endpoint(body["endpoint"])
        window = _window(body["completion_window"])
        metadata = check_metadata(body.get("metadata"))
        output_ttl = _output_expiry(body.get("output_expires_after"))
        budget = parse_budget_usd(body.get(BUDGET_FIELD))
        fid = body["input_file_id"]
        file = self.store.get_file(fid, tenant) if isinstance(fid, str) else None
        if file is None:
            raise InvalidRequest(
                f"No such File object: {fid}", param="input_file_id", code="invalid_file"
            )
        if file["purpose"] != "batch":
            raise InvalidRequest(
                f"File {fid} has purpose {file['purpose']!r}; a batch input needs 'batch'.",
                param="input_file_id", code="invalid_file",
            )  # fmt: skip
        now = int(time.time())
        row = {
            "id": ids.batch_id(), "tenant": tenant, "dialect": "openai", "endpoint": endpoint,
            "input_file_id": fid, "completion_window": body["completion_window"],
            "status": "validating", "created_at": now, "expires_at": now + window,
            "metadata": orjson.dumps(metadata).decode() if metadata is not None else None,
            "output_expires_after": output_ttl, "budget_ticks": budget,
        }  # fmt: skip
        self.store.insert_batch(row)
        return {**BATCH_DEFAULTS, **row}  # as created: a worker may already be validating it

    def create_message_batch(self, tenant: str, body: Any) -> dict[str, Any]:
        """An Anthropic Message Batch: the requests are checked for the create-time rules,
        stored as a JSONL blob and validated into rows by a worker like a file."""
        if not isinstance(body, dict):
            raise InvalidRequest("The request body must be a JSON object.")
        requests = check_requests(body.get("requests"))
        budget = parse_budget_usd(body.get(BUDGET_FIELD))
        limits = self.config.limits  # what ingest enforces: refuse now, not as an empty end
        if len(requests) > limits.max_lines:
            raise InvalidRequest(
                f"requests: this server takes at most {limits.max_lines} requests per batch, "
                f"got {len(requests)}.",
                param="requests",
            )
        bid = ids.new_id("msgbatch_")
        self._store_requests(bid, [
            orjson.dumps({"custom_id": item["custom_id"], "params": item["params"]})
            for item in requests
        ])  # fmt: skip
        now = int(time.time())
        row = {
            "id": bid, "tenant": tenant, "dialect": "anthropic", "endpoint": "/v1/messages",
            "input_file_id": None, "completion_window": "24h", "status": "validating",
            "created_at": now, "expires_at": now + 86400, "total": len(requests),
            "budget_ticks": budget,
        }  # fmt: skip
        self.store.insert_batch(row)
        return {**BATCH_DEFAULTS, **row}

    def create_gateway_batch(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        """An inline gateway batch: its requests are checked now (a 400 names the bad one),
        stored as a blob of OpenAI batch lines and validated into rows by a worker like a file."""
        model = gateway.check_model(body.get("model"))
        if self.provider_of(model) is None:
            raise InvalidRequest(
                f"model: no provider serves {model!r}; name one as 'provider:model', or use an "
                "alias or a model a provider lists.",
                param="model", code="model_not_found",
            )  # fmt: skip
        window_text = body.get("completion_window", "24h")
        window = _window(window_text)
        metadata = check_metadata(body.get("metadata"))
        budget = parse_budget_usd(body.get(BUDGET_FIELD))
        lines = gateway.request_lines(body.get("requests"), model, self.config.limits.max_lines)
        bid = ids.batch_id()
        self._store_requests(bid, lines)
        now = int(time.time())
        row = {
            "id": bid, "tenant": tenant, "dialect": "gateway", "endpoint": gateway.ENDPOINT,
            "input_file_id": None, "completion_window": window_text, "status": "validating",
            "created_at": now, "expires_at": now + window, "total": len(lines), "model": model,
            "metadata": orjson.dumps(metadata).decode() if metadata is not None else None,
            "budget_ticks": budget,
        }  # fmt: skip
        self.store.insert_batch(row)
        return {**BATCH_DEFAULTS, **row}

    def create_jobs(
        self, tenant: str, jobs: Sequence[dict[str, Any]], *, budget_ticks: int | None = None
    ) -> list[str]:
        """One submission of checked jobs → one ``jobs`` batch, one row per job (see
        ``domain/jobs.py``); the ids of its jobs, in order.

        Unlike the other dialects the rows are written here, before the answer, so that every
        job id handed out addresses a row from the start. The API claims the batch while it
        writes them with the worker's own ``ingest``; if it dies half-way the claim expires
        and a worker validates the batch again from its blob, as any other."""
        bid = ids.new_id(jobs_domain.BATCH_PREFIX)
        lines = [jobs_domain.request_line(n, job) for n, job in enumerate(jobs, 1)]
        self._store_requests(bid, lines)
        token, now = uuid.uuid4().hex, int(time.time())
        row = {
            "id": bid, "tenant": tenant, "dialect": "jobs", "endpoint": jobs_domain.ENDPOINT,
            "input_file_id": None, "completion_window": "24h", "status": "validating",
            "created_at": now, "expires_at": now + 86400, "total": len(lines),
            "claim_token": token, "claim_expires_at": now + JOBS_CLAIM_TTL,
            "budget_ticks": budget_ticks,
        }  # fmt: skip
        self.store.insert_batch(row)

        def renew() -> None:
            self.store.renew_claim(bid, token, time.time() + JOBS_CLAIM_TTL)

        batch = {**BATCH_DEFAULTS, **row}
        ingest(self.store, self.blobs, batch, token, self.router, self.config.limits, renew=renew)
        return [jobs_domain.job_id(bid, n) for n in range(1, len(lines) + 1)]

    def get_job(self, tenant: str | None, job_id: str) -> dict[str, Any]:
        """A job's row, with its batch's ``created_at``."""
        key = jobs_domain.parse_job_id(job_id)
        row = self.store.get_request(*key, dialect="jobs", tenant=tenant) if key else None
        if row is None:
            raise JobNotFound(f"No job found with id '{job_id}'.", param="job_id")
        return row

    def list_jobs(
        self, tenant: str | None, *, after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
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
        row = self.get_batch(tenant, batch_id, dialect=dialect)
        if row["status"] not in TERMINAL:
            raise InvalidRequest(
                f"Batch {batch_id} is still being processed; cancel it and wait until it has "
                "ended before deleting it."
            )
        self.store.delete_batch(batch_id)
        for key in (row["output_file_id"], row["error_file_id"], requests_blob(batch_id)):
            if key:
                self.blobs.delete(key)

    def results_page(
        self, tenant: str | None, batch_id: str, *, dialect: str, after: int, limit: int
    ) -> ResultsPage:
        """The result lines of finished rows after input line ``after``, in input order, in
        the batch's own format: partial results while it runs, every line once it ended."""
        self.get_batch(tenant, batch_id, dialect=dialect)
        rows = self.store.rows_after(batch_id, after, limit + 1, finished_only=True)
        page, render = rows[:limit], RENDERERS[dialect]
        body = b"".join(render(batch_id, row)[1] for row in page)
        return ResultsPage(body, page[-1][0] if page else after, len(rows) > limit)

    def get_batch(
        self, tenant: str | None, batch_id: str, *, dialect: Dialects = "openai"
    ) -> dict[str, Any]:
        """The batch, if it is of ``dialect`` (one name, or any of several)."""
        row = self.store.get_batch(batch_id, tenant)
        wanted = (dialect,) if isinstance(dialect, str) else dialect
        if row is None or row["dialect"] not in wanted:
            raise BatchNotFound(f"No batch found with id '{batch_id}'.", param="batch_id")
        return row

    def cancel_batch(
        self, tenant: str | None, batch_id: str, *, dialect: Dialects = "openai"
    ) -> dict[str, Any]:
        row = self.get_batch(tenant, batch_id, dialect=dialect)
        if row["status"] in TERMINAL and row["status"] != "cancelled":
            raise InvalidTransition(row["status"], "cancelling")
        return self.store.request_cancel(batch_id, tenant, int(time.time()))


def _endpoint(value: Any) -> str:
    if value not in ENDPOINTS:
        raise InvalidRequest(
            f"Unsupported endpoint {value!r}; batchgate supports {', '.join(ENDPOINTS)}.",
            param="endpoint", code="invalid_value",
        )  # fmt: skip
    return str(value)


def _window(value: Any) -> int:
    m = _WINDOW.match(value) if isinstance(value, str) else None
    hours = int(m.group(1)) if m else 0
    if not 1 <= hours <= 168:
        raise InvalidRequest(
            f"Invalid completion_window {value!r}: expected '24h' (or another whole number of "
            "hours from '1h' to '168h').",
            param="completion_window", code="invalid_value",
        )  # fmt: skip
    return hours * 3600


def check_metadata(value: Any) -> dict[str, str] | None:
    """OpenAI's metadata rules: ≤ 16 pairs, string keys ≤ 64 chars, string values ≤ 512."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("metadata must be an object of strings.", param="metadata")
    if len(value) > 16:
        raise InvalidRequest("metadata can have at most 16 pairs.", param="metadata")
    for k, v in value.items():
        if len(k) > 64:
            raise InvalidRequest(f"metadata key {k[:20]!r}… is over 64 chars.", param="metadata")
        if not isinstance(v, str) or len(v) > 512:
            raise InvalidRequest(
                f"metadata[{k!r}] must be a string of at most 512 chars.", param="metadata"
            )
    return value


def _output_expiry(value: Any) -> int | None:
    if value is None:
        return None
    seconds = value.get("seconds") if isinstance(value, dict) else None
    if (
        not isinstance(value, dict)
        or value.get("anchor") != "created_at"
        or not isinstance(seconds, int)
        or not 3600 <= seconds <= 2_592_000
    ):
        raise InvalidRequest(
            "output_expires_after must be {'anchor': 'created_at', 'seconds': 3600…2592000}.",
            param="output_expires_after",
        )
    return seconds
