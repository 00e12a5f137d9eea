"""The jobs dialect's create check: plain-prompt jobs, one row each (see ``domain/jobs.py``)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from batchgate import ids
from batchgate.dialects.base import CreateContext, Draft
from batchgate.domain import jobs
from batchgate.domain.budget import BUDGET_FIELD, parse_budget_usd
from batchgate.domain.records import Batch
from batchgate.domain.states import BatchStatus
from batchgate.errors import InvalidRequest

__all__ = ["CLAIM_TTL", "check_body", "create", "jobs_draft"]

CLAIM_TTL = 60.0  # the API's hold on a jobs batch while it writes its rows


def create(ctx: CreateContext, tenant: str, body: Any) -> Draft:
    """One submission (``jobs``: a list, or ``jsonl``: one job a line) → one ``jobs`` batch.
    Unlike the other dialects its rows are written before the answer (``ingest_now``), so
    every job id handed out addresses a row from the start; the service claims the batch while
    it writes them, and if it dies half-way the claim expires and a worker validates the batch
    again from its blob, as any other."""
    field = "jsonl" if isinstance(body, dict) and "jsonl" in body else "jobs"
    body = check_body(body, field)
    parse = jobs.parse_jsonl if field == "jsonl" else jobs.check_jobs
    budget = parse_budget_usd(body.get(BUDGET_FIELD))
    checked = parse(body.get(field), ctx.max_lines)
    lines = [jobs.request_line(n, job) for n, job in enumerate(checked, 1)]
    return jobs_draft(tenant, lines, budget)


def jobs_draft(tenant: str, lines: list[bytes], budget: int | None) -> Draft:
    """A submission of these request lines (``jobs.request_line``): a create's, or a retry's."""
    now = int(time.time())
    return Draft(Batch(
        id=ids.new_id(jobs.BATCH_PREFIX), tenant=tenant, dialect="jobs", endpoint=jobs.ENDPOINT,
        status=BatchStatus.VALIDATING, created_at=now, expires_at=now + 86400,
        total=len(lines), claim_token=uuid.uuid4().hex, claim_expires_at=now + CLAIM_TTL,
        budget_ticks=budget,
    ), lines, ingest_now=True)  # fmt: skip


def check_body(body: Any, field: str) -> dict[str, Any]:
    """A jobs submission body: a JSON object with ``field``."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"The request body must be a JSON object with '{field}'.")
    return body
