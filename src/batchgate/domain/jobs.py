"""The jobs dialect's plain-prompt jobs: their checks, their Chat Completions request, their ids.

A job is one request row. One submission (``POST /qai/v1/batch`` or ``…/batch/jsonl``) is one
internal batch of dialect ``jobs`` with one row per job, and a job id addresses its row:
``job_<batch id body>_<line>``. So a job runs, retries and finalizes on the engine's one code
path; a submission of 10,000 jobs is one batch that the lanes lease fairly against others (not
10,000 batches, each validated, claimed and finalized on its own); and a job's status is a
projection of its row's state. What the job object echoes (its model and title) is the row's
``custom_id``, a compact JSON label ``[line, model, title]``: unique within the batch like every
custom_id, and read with the row, so a job is one row read.
"""

from __future__ import annotations

from typing import Any

import orjson

from batchgate.domain.states import RowState
from batchgate.errors import InvalidRequest

ENDPOINT = "/v1/chat/completions"
BATCH_PREFIX = "jobs_"
JOB_PREFIX = "job_"
MAX_LABEL = 512  # what an OpenAI batch input line allows a custom_id
FIELDS = ("model", "prompt", "title", "system_prompt", "max_tokens")
_OPTIONAL_TEXT = ("title", "system_prompt")

STATUS: dict[str, str] = {
    RowState.QUEUED: "pending",
    RowState.LEASED: "running",
    RowState.SUCCEEDED: "completed",
    RowState.FAILED: "failed",
    RowState.CANCELED: "failed",
    RowState.EXPIRED: "failed",
}


def _fail(where: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{where}: {message}", param=where)


def _text(job: dict[str, Any], name: str, at: str, *, required: bool) -> None:
    value = job.get(name)
    if value is None and not required:
        return
    if not isinstance(value, str) or (required and not value):
        got = "null" if value is None else repr(value) if value == "" else type(value).__name__
        kind = "a non-empty string" if required else "a string or null"
        raise _fail(at + name, f"expected {kind}, got {got}.")


def check_job(job: Any, where: str, sep: str) -> dict[str, Any]:
    """One job object; a problem is named ``{where}{sep}{field}`` (``jobs.3.prompt``,
    ``line 4: prompt``)."""
    if not isinstance(job, dict):
        raise _fail(where, "expected a job object.")
    at = where + sep
    for name in job:
        if name not in FIELDS:
            raise _fail(at + name, f"unknown field; a job takes {', '.join(FIELDS)}.")
    _text(job, "model", at, required=True)
    if "\x00" in job["model"]:
        raise _fail(
            at + "model", "contains a NUL character (\\u0000), which no model name may hold."
        )
    _text(job, "prompt", at, required=True)
    for name in _OPTIONAL_TEXT:
        _text(job, name, at, required=False)
    cap = job.get("max_tokens")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise _fail(at + "max_tokens", f"expected an integer >= 1, got {cap!r}.")
    if len(_label(10**9, job)) > MAX_LABEL:
        name = "title" if job.get("title") else "model"
        raise _fail(
            at + name,
            f"too long: the model and title together take at most {MAX_LABEL} characters "
            "(as JSON).",
        )
    return job


def check_jobs(jobs: Any, max_jobs: int) -> list[dict[str, Any]]:
    if not isinstance(jobs, list) or not jobs:
        raise _fail("jobs", "expected a non-empty list of jobs.")
    _check_count(len(jobs), max_jobs)
    return [check_job(job, f"jobs.{i}", ".") for i, job in enumerate(jobs)]


def parse_jsonl(text: Any, max_jobs: int) -> list[dict[str, Any]]:
    """One job object per line (blank lines skipped); a bad line is named by its 1-based number."""
    if not isinstance(text, str):
        raise _fail("jsonl", "expected a string of job objects, one per line.")
    jobs = []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            job = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _fail(f"line {n}", f"not valid JSON ({exc}).") from None
        jobs.append(check_job(job, f"line {n}", ": "))
    if not jobs:
        raise _fail("jsonl", "no jobs: expected one job object per line.")
    _check_count(len(jobs), max_jobs)
    return jobs


def _check_count(count: int, max_jobs: int) -> None:
    if count > max_jobs:
        raise _fail("jobs", f"this server takes at most {max_jobs} jobs at once, got {count}.")


def chat_body(job: dict[str, Any]) -> dict[str, Any]:
    """The prompt as a Chat Completions request; ``system_prompt`` becomes a system message."""
    messages = [{"role": "user", "content": job["prompt"]}]
    if job.get("system_prompt"):
        messages.insert(0, {"role": "system", "content": job["system_prompt"]})
    body: dict[str, Any] = {"model": job["model"], "messages": messages}
    if job.get("max_tokens") is not None:
        body["max_tokens"] = job["max_tokens"]
    return body


def _label(line: int, job: dict[str, Any]) -> str:
    return orjson.dumps([line, job["model"], job.get("title")]).decode()


def request_line(line: int, job: dict[str, Any]) -> bytes:
    """A checked job as the OpenAI batch input line ingest reads, its label as the custom_id."""
    return orjson.dumps(
        {"custom_id": _label(line, job), "method": "POST", "url": ENDPOINT, "body": chat_body(job)}
    )


def relabel(raw: bytes, line: int) -> bytes:
    """A job's request line (``request_line``) given the label of line ``line`` of another
    submission (a retry's): the same model, title and request."""
    doc = orjson.loads(raw)
    model, title = label(doc["custom_id"])
    doc["custom_id"] = _label(line, {"model": model, "title": title})
    return orjson.dumps(doc)


def label(custom_id: str) -> tuple[str, str | None]:
    """(model, title) of a job row."""
    _line, model, title = orjson.loads(custom_id)
    return str(model), title if isinstance(title, str) else None


def job_id(batch_id: str, line: int) -> str:
    return f"{JOB_PREFIX}{batch_id.removeprefix(BATCH_PREFIX)}_{line}"


def _is_line(text: str) -> bool:
    return 0 < len(text) <= 9 and text.isascii() and text.isdigit()


def parse_job_id(value: str) -> tuple[str, int] | None:
    """(batch id, line) of a job id, or None when it is not one."""
    body, _, line = value.removeprefix(JOB_PREFIX).rpartition("_")
    if not value.startswith(JOB_PREFIX) or not body or not _is_line(line):
        return None
    if not (body.isascii() and body.isalnum()):  # base32: nothing else reaches the store
        return None
    return BATCH_PREFIX + body, int(line)
