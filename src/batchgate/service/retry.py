"""Retry what failed, as a new batch: ``POST /v1/batches/{id}/retry`` (OpenAI and gateway
batches), ``POST /v1/messages/batches/{id}/retry`` (Message Batches) and ``POST
/qai/v1/batch/retry`` (jobs).

A retry batch holds the **original input lines** of the rows that ended without a result:
failed, or never sent (cancelled, expired, kept back by a budget); with ``error_codes``, only
those whose error code is listed. The lines are copied as they were uploaded, in input order,
from the original input (the uploaded file, or the blob an inline batch's requests were kept
in), not rebuilt from the rows, whose bodies were already routed and translated; only the line
ends become ``\n`` and a UTF-8 BOM is dropped, as validation reads them. The retry is
validated, routed and priced afresh under the server's current configuration, so a route, key
or upstream fixed since then applies. The new batch takes the original's dialect, endpoint,
model, completion window (counted from now), tenant and metadata with ``retry_of`` (the
original's id). Its budget is ``budget_usd`` when given, else what the original's budget has
left (the original's budget bounds the two together; a spent one is a 400 that asks for
``budget_usd``). An OpenAI batch's lines become a new file of purpose ``batch``
(``retry-of-<id>.jsonl``) that its ``input_file_id`` names; an inline batch's become its
requests blob, as at create.

Each batch is retried **once** (``retried_by``, set by one conditional update, so two retries
racing cannot both pass): a second retry would send and pay for the same lines again; the
lines that still fail are retried from the retry batch. A mark whose retry batch is gone
(deleted, or a retry that crashed half-way) is taken over.

A batch cancelled before a worker read its input is still read into rows (which end
cancelled), so its retry holds every line. Only an ended batch can be retried (``completed``,
``expired`` or ``cancelled``); a running one is a 409, a batch whose input failed validation has
no rows to retry (400), and so has one whose every line succeeded. A batch whose input file was
deleted cannot be retried: its lines are gone. A refused retry leaves nothing behind.

The jobs dialect has no batch ids to show: ``retry_jobs`` takes failed job ids (up to 1,000, of
any of the tenant's submissions) and makes them one new submission, whose job ids it answers in
order; it has a budget only when ``budget_usd`` is given.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, BinaryIO

from batchgate import ids
from batchgate.dialects.jobs.create import jobs_draft
from batchgate.domain import jobs as jobs_domain
from batchgate.domain.budget import BUDGET_FIELD
from batchgate.domain.cost import usd
from batchgate.domain.jsonl import iter_lines
from batchgate.domain.records import Batch, RequestRecord
from batchgate.domain.retry import RetryAsk, parse_retry, retry_metadata
from batchgate.domain.states import OPEN_ROWS, BatchStatus, RowState
from batchgate.engine.ingest import requests_blob
from batchgate.errors import BatchNotFound, Conflict, InvalidRequest

if TYPE_CHECKING:
    from batchgate.service.core import Dialects, Operations

__all__ = ["retry_batch", "retry_jobs"]

PAGE = 5000  # line numbers read per store call
JOB_IDS = "job_ids"
_ID_PREFIX = {"anthropic": "msgbatch_"}  # else ``batch_…``
MAX_JOBS = 1000  # job ids per jobs retry (each is one row read)


def retry_batch(
    ops: Operations, tenant: str | None, batch_id: str, body: Any, *, dialect: Dialects
) -> Batch:
    """A new batch of ``batch_id``'s failed lines (see the module's docstring)."""
    ask = parse_retry(body)
    old = ops.get_batch(tenant, batch_id, dialect=dialect)
    _check_ended(old)
    budget = _budget(old, ask)
    new_id = ids.new_id(_ID_PREFIX[old.dialect]) if old.dialect in _ID_PREFIX else ids.batch_id()
    _claim(ops, old, new_id)
    try:
        batch = _make(ops, old, new_id, ask, budget)
    except BaseException:
        ops.store.mark_retried(batch_id, None, expect=new_id)  # another may try again
        raise
    return batch


def _make(ops: Operations, old: Batch, new_id: str, ask: RetryAsk, budget: int | None) -> Batch:
    file = old.input_file_id is not None
    key = ids.file_id() if file else requests_blob(new_id)
    wanted = _lines_of(ops, old.id, ask)
    with ops.blobs.writer(key) as out:  # raising inside the writer leaves no blob behind
        count = _copy_lines(ops, wanted, out, old)
        if count == 0:
            raise _nothing(old.id, ask)
        if ops.store.get_batch(old.id) is None:  # deleted while its rows were read
            raise BatchNotFound(f"No batch found with id '{old.id}'.", param="batch_id")
    if file:
        ops.add_batch_file(old.tenant, key, f"retry-of-{old.id}.jsonl")
    now = int(time.time())
    batch = Batch(
        id=new_id, tenant=old.tenant, dialect=old.dialect, endpoint=old.endpoint,
        input_file_id=key if file else None, completion_window=old.completion_window,
        status=BatchStatus.VALIDATING, created_at=now,
        expires_at=now + max(3600, old.expires_at - old.created_at),
        metadata=retry_metadata(old.metadata, old.id), model=old.model,
        output_expires_after=old.output_expires_after, total=0 if file else count,
        budget_ticks=budget,
    )  # fmt: skip
    ops.store.insert_batch(batch)
    return batch


def retry_jobs(ops: Operations, tenant: str | None, body: Any) -> Batch:
    """One new jobs submission of the failed jobs ``body["job_ids"]`` names, in that order."""
    ask = parse_retry(body, allowed=(JOB_IDS,))
    job_ids = _job_ids(body.get(JOB_IDS), min(MAX_JOBS, ops.max_lines))
    rows = [_failed_job(ops, tenant, at, jid, ask) for at, jid in enumerate(job_ids)]
    batches: dict[str, Batch] = {}
    for row in rows:
        if row.batch_id not in batches:
            batches[row.batch_id] = ops.get_batch(tenant, row.batch_id, dialect="jobs")
    owners = {b.tenant for b in batches.values()}
    if len(owners) > 1:
        raise InvalidRequest(
            f"{JOB_IDS}: these jobs belong to {len(owners)} tenants; retry each tenant's "
            "jobs on their own.",
            param=JOB_IDS,
        )
    by_batch: dict[str, list[int]] = {}
    for row in rows:
        by_batch.setdefault(row.batch_id, []).append(row.line)
    raw: dict[tuple[str, int], bytes] = {}
    for bid, lines in by_batch.items():
        with _open_input(ops, batches[bid]) as fh:
            for number, line in _pick(iter_lines(fh), iter(sorted(lines))):
                raw[(bid, number)] = line
    lines_out = [jobs_domain.relabel(raw[(r.batch_id, r.line)], n) for n, r in enumerate(rows, 1)]
    first = next(iter(batches.values()))
    draft = jobs_draft(first.tenant, lines_out, ask.budget_ticks)
    parents = retry_metadata(None, ",".join(batches))  # the submissions the jobs came from
    return ops.insert_draft(replace(draft, batch=replace(draft.batch, metadata=parents)))


# -- the pieces ---------------------------------------------------------------------------------


def _check_ended(batch: Batch) -> None:
    if batch.status == BatchStatus.FAILED:
        raise InvalidRequest(
            f"Batch {batch.id} failed validation, so it has no requests to retry; fix its input "
            "(its errors say where) and create a new batch.",
            code="nothing_to_retry",
        )
    if not batch.ended:
        raise Conflict(
            f"Batch {batch.id} is still {batch.status}; retry it once it has ended (wait for it, "
            "or cancel it first).",
            code="batch_not_ended",
        )


def _claim(ops: Operations, old: Batch, new_id: str) -> None:
    """Mark ``old`` as retried by ``new_id``, once: a second retry would send and pay for the
    same lines again. A mark whose retry batch is gone (deleted, or never made by a retry that
    crashed half-way) is taken over."""
    held = old.retried_by
    if held is not None and ops.store.get_batch(held) is not None:
        raise _already(old.id, held)
    if not ops.store.mark_retried(old.id, new_id, expect=held):
        now = ops.store.get_batch(old.id)
        raise _already(old.id, now.retried_by if now and now.retried_by else "another batch")


def _already(batch_id: str, retry_id: str) -> Conflict:
    return Conflict(
        f"Batch {batch_id} was already retried as {retry_id}; retry that batch for the lines "
        "that still fail (each batch is retried once, so no line is sent and paid for twice).",
        code="already_retried",
    )


def _budget(old: Batch, ask: RetryAsk) -> int | None:
    """The retry's budget: the one asked for, else what the original's budget has left (the
    original's budget bounds it and its retry together); refused when nothing is left."""
    if ask.budget_ticks is not None or old.budget_ticks is None:
        return ask.budget_ticks
    left = old.budget_ticks - old.cost_ticks
    if left <= 0:
        raise InvalidRequest(
            f"Batch {old.id}'s budget of ${usd(old.budget_ticks)} is spent, so its retry could "
            "send nothing; give the retry a budget of its own with budget_usd.",
            param=BUDGET_FIELD, code="budget_spent",
        )  # fmt: skip
    return left


def _input_key(ops: Operations, batch: Batch) -> str:
    """The blob holding the batch's input lines; InvalidRequest when it is gone."""
    if batch.input_file_id is None:
        key = requests_blob(batch.id)
    else:
        file = ops.store.get_file(batch.input_file_id)
        key = file.blob_key if file is not None else ""
    if not key or not ops.blobs.path(key).is_file():
        raise _gone(batch)
    return key


def _gone(batch: Batch) -> InvalidRequest:
    what = f"input file {batch.input_file_id}" if batch.input_file_id else "stored requests"
    return InvalidRequest(
        f"Batch {batch.id} cannot be retried: its {what} no longer exists, so its lines are "
        "gone. Upload them again and create a new batch.",
        code="input_gone",
    )


@contextlib.contextmanager
def _open_input(ops: Operations, batch: Batch) -> Iterator[BinaryIO]:
    """The batch's input lines, open; InvalidRequest when they are gone (also when they go
    between the check and the open: a delete of the input file racing the retry)."""
    key = _input_key(ops, batch)
    try:
        fh = ops.blobs.open(key)
    except FileNotFoundError:
        raise _gone(batch) from None
    with fh:
        yield fh


def _nothing(batch_id: str, ask: RetryAsk) -> InvalidRequest:
    which = f" with error code {', '.join(sorted(ask.codes))}" if ask.codes is not None else ""
    return InvalidRequest(
        f"Batch {batch_id} has no failed requests{which} to retry.", code="nothing_to_retry"
    )


def _lines_of(ops: Operations, batch_id: str, ask: RetryAsk) -> Iterator[int]:
    """The unsucceeded rows' line numbers, in order, a page at a time."""
    after = 0
    while True:
        page = ops.store.unsucceeded_lines(batch_id, after=after, limit=PAGE, codes=ask.codes)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1]


def _pick(lines: Iterator[tuple[int, bytes]], wanted: Iterator[int]) -> Iterator[tuple[int, bytes]]:
    """The ``(number, line)`` of ``lines`` whose numbers ``wanted`` yields (both ascending)."""
    nxt = next(wanted, None)
    for number, raw in lines:
        if nxt is None:
            return
        if number == nxt:
            yield number, raw
            nxt = next(wanted, None)


def _copy_lines(ops: Operations, wanted: Iterator[int], out: BinaryIO, batch: Batch) -> int:
    """Write the wanted lines of the batch's input to ``out``; how many were written."""
    count = 0
    with _open_input(ops, batch) as fh:
        for _number, raw in _pick(iter_lines(fh), wanted):
            count += 1
            out.write(raw)
            out.write(b"\n")
    return count


def _job_ids(value: Any, max_jobs: int) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"{JOB_IDS}: expected a non-empty list of job ids.", param=JOB_IDS)
    if len(value) > max_jobs:
        raise InvalidRequest(
            f"{JOB_IDS}: this server takes at most {max_jobs} jobs at once, got {len(value)}.",
            param=JOB_IDS,
        )
    seen: dict[str, int] = {}
    for at, jid in enumerate(value):
        if jid in seen:
            raise InvalidRequest(
                f"{JOB_IDS}.{at}: {jid!r} is also {JOB_IDS}.{seen[jid]}; name each job once.",
                param=f"{JOB_IDS}.{at}",
            )
        seen[jid] = at
    return list(value)


def _failed_job(
    ops: Operations, tenant: str | None, at: int, job_id: str, ask: RetryAsk
) -> RequestRecord:
    where = f"{JOB_IDS}.{at}"
    row = ops.get_job(tenant, job_id)  # JobNotFound names the id
    if row.state in OPEN_ROWS:
        raise Conflict(
            f"{where}: job {job_id} has not ended yet; retry it once it has failed.",
            code="job_not_ended",
        )
    if row.state == RowState.SUCCEEDED:
        raise InvalidRequest(
            f"{where}: job {job_id} completed; only failed jobs can be retried.",
            param=where, code="nothing_to_retry",
        )  # fmt: skip
    if ask.codes is not None and (row.error_code or "") not in ask.codes:
        raise InvalidRequest(
            f"{where}: job {job_id} failed with {row.error_code!r}, which is not in "
            "error_codes.",
            param=where, code="nothing_to_retry",
        )  # fmt: skip
    return row
