"""The jobs dialect (``/qai/v1/batch…``): plain-prompt jobs, each read on its own, typed as its
clients read them (RFC 3339 strings, a string error, integer cost ticks), on a live server."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from sqlalchemy import select

from batchgate.sim import SimHandle
from batchgate.storage.schema import requests
from tests.api.test_anthropic_batches import upstream_config
from tests.helpers.servers import ServerHandle

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
JOB_KEYS = {
    "job_id", "status", "model", "title", "created_at", "completed_at", "result", "error",
    "cost_ticks",
}  # fmt: skip
DONE = {"completed", "failed"}


def submit(http: httpx.Client, jobs: list[dict[str, Any]]) -> list[str]:
    r = http.post("/qai/v1/batch", json={"jobs": jobs})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending"
    ids: list[str] = r.json()["job_ids"]
    assert len(ids) == len(jobs) == len(set(ids))
    return ids


def job(http: httpx.Client, job_id: str) -> dict[str, Any]:
    r = http.get(f"/qai/v1/batch/jobs/{job_id}")
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def wait_jobs(http: httpx.Client, ids: list[str], timeout: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        docs = [job(http, i) for i in ids]
        if all(d["status"] in DONE for d in docs):
            return docs
        assert time.monotonic() < deadline, docs
        time.sleep(0.05)


def check_types(doc: dict[str, Any]) -> None:
    """Exactly the types a client of this dialect reads."""
    assert set(doc) == JOB_KEYS
    assert type(doc["job_id"]) is str and type(doc["model"]) is str
    assert doc["status"] in {"pending", "running", "completed", "failed"}
    assert doc["title"] is None or type(doc["title"]) is str
    assert type(doc["created_at"]) is str and RFC3339_UTC.match(doc["created_at"])
    ended = doc["status"] in DONE
    if ended:
        assert type(doc["completed_at"]) is str and RFC3339_UTC.match(doc["completed_at"])
        assert doc["completed_at"] >= doc["created_at"]
    else:
        assert doc["completed_at"] is None
    if doc["status"] == "failed":
        assert type(doc["error"]) is str and doc["error"] and doc["result"] is None
    else:
        assert doc["error"] is None
    assert type(doc["cost_ticks"]) is int and doc["cost_ticks"] == 0  # no prices configured


def sent_body(srv: ServerHandle, job_id: str) -> dict[str, Any]:
    """What was stored to send upstream for a job (its row's body)."""
    line = int(job_id.rsplit("_", 1)[1])
    with srv.store.read() as conn:
        bodies = conn.execute(select(requests.c.body).where(requests.c.line == line)).all()
    assert len(bodies) == 1
    doc: dict[str, Any] = orjson.loads(bytes(bodies[0][0]))
    return doc


# -- submit → poll → read --------------------------------------------------------------------------


def test_jobs_run_to_completed_or_failed_with_exact_types(server: ServerHandle) -> None:
    http = server.http()
    ids = submit(http, [
        {"model": "sim-model", "prompt": "What is 2+2?", "title": "Sum",
         "system_prompt": "Answer briefly.", "max_tokens": 32},
        {"model": "fail-model", "prompt": "x"},
        {"model": "sim-model", "prompt": "Name a colour.", "title": None},
    ])  # fmt: skip
    assert all(i.startswith("job_") for i in ids)
    first = job(http, ids[0])
    check_types(first)
    assert first["status"] in {"pending", "running", "completed"}  # no row missing, ever

    ok, bad, plain = wait_jobs(http, ids)
    for doc in (ok, bad, plain):
        check_types(doc)
    assert (ok["status"], ok["model"], ok["title"]) == ("completed", "sim-model", "Sum")
    assert type(ok["result"]) is str and "What is 2+2?" in ok["result"]
    assert (bad["status"], bad["model"], bad["title"]) == ("failed", "fail-model", None)
    assert "fail-model" in bad["error"]  # the upstream's message, as a plain string
    assert plain["status"] == "completed" and plain["title"] is None
    assert sent_body(server, ids[0]) == {
        "model": "sim-model", "max_tokens": 32,
        "messages": [{"role": "system", "content": "Answer briefly."},
                     {"role": "user", "content": "What is 2+2?"}],
    }  # fmt: skip


def test_jobs_on_an_anthropic_upstream(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(config=upstream_config("native", sim))
    http = srv.http()
    ids = submit(http, [
        {"model": "sim-model", "prompt": "Hello there", "system_prompt": "Be kind.",
         "max_tokens": 40, "title": "greet"},
        {"model": "fail-x", "prompt": "y"},
    ])  # fmt: skip
    ok, bad = wait_jobs(http, ids)
    check_types(ok)
    check_types(bad)
    assert ok["status"] == "completed" and "Hello there" in ok["result"]
    assert bad["status"] == "failed" and "fail-x" in bad["error"]
    sent = sent_body(srv, ids[0])  # translated to Messages at ingest
    assert sent["system"] == "Be kind." and sent["max_tokens"] == 40
    assert sim.stats()["requests"] == 2


# -- JSONL -----------------------------------------------------------------------------------------


def test_jsonl_bad_line_is_named_and_creates_nothing(server: ServerHandle) -> None:
    http = server.http()
    good = '{"model": "sim-model", "prompt": "p"}'
    cases = [
        (f'{good}\n{good}\n{{"model": "sim-model"}}\n', "line 3: prompt:"),
        (f"{good}\n{{nope\n", "line 2: not valid JSON"),
        (f'{good}\n\n{{"model": "m", "prompt": "p", "temp": 1}}\n', "line 3: temp:"),
        ('{"model": "m", "prompt": "p", "max_tokens": 0}\n', "line 1: max_tokens:"),
        ("[1]\n", "line 1: expected a job object"),
        ("\n\n", "jsonl: no jobs"),
    ]
    for text, where in cases:
        r = http.post("/qai/v1/batch/jsonl", json={"jsonl": text})
        assert r.status_code == 400, r.text
        assert set(r.json()) == {"error"} and r.json()["error"].startswith(where), r.json()
    assert http.get("/qai/v1/batch/jobs").json() == {"jobs": [], "has_more": False}

    r = http.post("/qai/v1/batch/jsonl", json={"jsonl": f"{good}\r\n\n{good}\n"})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"job_ids"} and len(r.json()["job_ids"]) == 2
    assert [d["status"] for d in wait_jobs(http, r.json()["job_ids"])] == ["completed"] * 2


# -- listing ---------------------------------------------------------------------------------------


def test_list_is_newest_first_and_pages_by_after(
    db_url: str, make_server: Callable[..., ServerHandle]
) -> None:
    server = make_server(db_url)  # SQLite and PostgreSQL: the row-value cursor on both
    http = server.http()
    older = submit(http, [{"model": "sim-model", "prompt": f"a{i}"} for i in range(3)])
    newer = submit(http, [{"model": "sim-model", "prompt": f"b{i}"} for i in range(2)])
    expected = newer[::-1] + older[::-1]
    everything = http.get("/qai/v1/batch/jobs").json()
    assert [j["job_id"] for j in everything["jobs"]] == expected
    assert everything["has_more"] is False
    for doc in everything["jobs"]:
        check_types(doc)

    seen, after = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"after": after} if after else {})}
        page = http.get("/qai/v1/batch/jobs", params=params).json()
        seen += [j["job_id"] for j in page["jobs"]]
        if not page["has_more"]:
            break
        after = seen[-1]
    assert seen == expected
    for params in ({"limit": 0}, {"limit": 1001}, {"after": "batch_x"}):
        r = http.get("/qai/v1/batch/jobs", params=params)
        assert r.status_code == 400 and set(r.json()) == {"error"}, r.text


# -- errors: one simple envelope, never a 5xx for a client's mistake -------------------------------


def test_errors_use_the_simple_envelope(server: ServerHandle) -> None:
    http = server.http()
    ok = {"model": "sim-model", "prompt": "p"}
    problems = [
        (http.post("/qai/v1/batch", content=b"{nope"), 400, "parse"),
        (http.post("/qai/v1/batch", json=[ok]), 400, "JSON object"),
        (http.post("/qai/v1/batch", json={"jobs": "x"}), 400, "jobs:"),
        (http.post("/qai/v1/batch", json={"jobs": []}), 400, "jobs:"),
        (http.post("/qai/v1/batch", json={"jobs": [ok, {"prompt": "p"}]}), 400, "jobs.1.model:"),
        (http.post("/qai/v1/batch", json={"jobs": [{**ok, "title": 5}]}), 400, "jobs.0.title:"),
        (http.post("/qai/v1/batch", json={"jobs": [{**ok, "max_tokens": True}]}), 400,
         "jobs.0.max_tokens:"),
        (http.post("/qai/v1/batch", json={"jobs": [{**ok, "title": "t" * 600}]}), 400,
         "jobs.0.title: too long"),
        (http.post("/qai/v1/batch/jsonl", json={"jsonl": 5}), 400, "jsonl:"),
        (http.get("/qai/v1/batch/jobs/job_nope"), 404, "No job found"),
        (http.get("/qai/v1/batch/jobs/job_01abc_99999999999999"), 404, "No job found"),
        (http.get("/qai/v1/batch/jobs/batch_x"), 404, "No job found"),
        (http.get("/qai/v1/nothing"), 404, "Unknown request URL"),
        (http.get("/qai/v1/batch"), 405, ""),
    ]  # fmt: skip
    for r, status, fragment in problems:
        assert r.status_code == status, r.text
        body = r.json()
        assert set(body) == {"error"} and type(body["error"]) is str, body
        assert fragment in body["error"], body
    assert http.get("/qai/v1/batch/jobs").json()["jobs"] == []
