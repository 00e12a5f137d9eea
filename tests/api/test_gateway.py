"""The inline gateway dialect on ``/v1/batches`` (an inline ``requests`` list, JSON results),
against a live server: raw HTTP for its own wire format, the official openai SDK to show that
the routes it shares with the OpenAI dialect still serve that SDK."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from batchgate.config import Config, Limits, UpstreamConfig
from batchgate.sim import SimHandle
from tests.api.test_anthropic_batches import upstream_config
from tests.helpers.servers import ServerHandle

OPENAI_BATCH_KEYS = {
    "id", "object", "endpoint", "model", "errors", "input_file_id", "completion_window",
    "status", "output_file_id", "error_file_id", "created_at", "expires_at", "in_progress_at",
    "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at",
    "request_counts", "usage", "metadata",
}  # fmt: skip
STATUSES = {
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling",
    "cancelled",
}  # fmt: skip


def req(cid: str, model: str | None = None, text: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": text or f"hello {cid}"}]}
    if model is not None:
        body["model"] = model
    return {"custom_id": cid, "body": body}


def create(http: httpx.Client, requests: list[Any], **extra: Any) -> dict[str, Any]:
    r = http.post("/v1/batches", json={"model": "default:sim-model", "requests": requests, **extra})
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def results(http: httpx.Client, batch_id: str, **params: Any) -> dict[str, Any]:
    r = http.get(f"/v1/batches/{batch_id}/results", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    doc: dict[str, Any] = r.json()
    return doc


def listed(http: httpx.Client) -> list[str]:
    return [b["id"] for b in http.get("/v1/batches", params={"limit": 100}).json()["data"]]


def check_batch(doc: dict[str, Any]) -> None:
    """A gateway batch: every OpenAI Batch key, plus provider; Unix-second stamps."""
    assert set(doc) >= OPENAI_BATCH_KEYS and "provider" in doc
    assert doc["object"] == "batch" and doc["status"] in STATUSES
    assert set(doc["request_counts"]) == {"total", "completed", "failed"}
    for name in ("created_at", "expires_at"):
        assert type(doc[name]) is int
    for name in ("in_progress_at", "completed_at", "cancelled_at"):
        assert doc[name] is None or type(doc[name]) is int


# -- the life of a batch ---------------------------------------------------------------------------


def test_create_poll_results_with_upstream_errors(server: ServerHandle) -> None:
    http = server.http()
    requests = [req("a"), req("bad", model="fail-model"), req("own", model="sim-other"), req("z")]
    created = create(http, requests, metadata={"team": "x"}, completion_window="2h")
    check_batch(created)
    assert created["id"].startswith("batch_")
    assert created["status"] == "validating"
    assert (created["model"], created["provider"]) == ("default:sim-model", "default")
    assert created["request_counts"] == {"total": 4, "completed": 0, "failed": 0}
    assert created["expires_at"] - created["created_at"] == 2 * 3600
    assert (created["metadata"], created["completion_window"]) == ({"team": "x"}, "2h")
    assert created["endpoint"] == "/v1/chat/completions" and created["input_file_id"] is None

    server.wait_for(created["id"])
    done = http.get(f"/v1/batches/{created['id']}").json()
    check_batch(done)
    assert done["status"] == "completed" and done["completed_at"] >= done["created_at"]
    assert done["request_counts"] == {"total": 4, "completed": 3, "failed": 1}
    assert done["model"] == "default:sim-model"  # kept, though one request named its own

    got = results(http, created["id"])
    assert [x["custom_id"] for x in got["results"]] == ["a", "bad", "own", "z"]
    assert (got["has_more"], got["next_after"]) == (False, 4)
    for item in got["results"]:
        assert set(item) == {"custom_id", "result", "error"}
    ok, bad, own = got["results"][0], got["results"][1], got["results"][2]
    assert ok["error"] is None and ok["result"]["object"] == "chat.completion"
    assert "hello a" in ok["result"]["choices"][0]["message"]["content"]
    assert ok["result"]["model"] == "sim-model"  # the provider prefix was stripped upstream
    assert own["result"]["model"] == "sim-other"
    assert bad["result"] is None
    assert bad["error"]["code"] == "model_not_found"  # the upstream's code and message
    assert "fail-model" in bad["error"]["message"]


def test_on_an_anthropic_upstream_results_are_chat_completions(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(config=upstream_config("native", sim))
    http = srv.http()
    r = http.post("/v1/batches", json={
        "model": "claude:sim-model", "requests": [req("a"), req("bad", model="fail-x")],
    })  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["provider"] == "claude"
    srv.wait_for(r.json()["id"])
    ok, bad = results(http, r.json()["id"])["results"]
    assert ok["result"]["object"] == "chat.completion"  # translated back from a Message
    assert ok["result"]["choices"][0]["message"]["role"] == "assistant"
    assert "hello a" in ok["result"]["choices"][0]["message"]["content"]
    assert bad["result"] is None and bad["error"]["code"] == "upstream_error"
    assert "fail-x" in bad["error"]["message"]
    assert sim.stats()["requests"] == 2


# -- one path, two dialects ------------------------------------------------------------------------


def test_the_openai_sdk_still_creates_and_reads_both_kinds(server: ServerHandle) -> None:
    client, http = server.openai(), server.http()
    line = {
        "custom_id": "f1", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]},
    }  # fmt: skip
    fid = client.files.create(file=("in.jsonl", json.dumps(line).encode()), purpose="batch").id
    from_file = client.batches.create(
        input_file_id=fid, endpoint="/v1/chat/completions", completion_window="24h"
    )
    inline = create(http, [req("g1"), req("g2")])
    server.wait_for(from_file.id)
    server.wait_for(inline["id"])

    listed_ids = [b.id for b in client.batches.list()]
    assert listed_ids == [inline["id"], from_file.id]  # newest first, both dialects
    got = client.batches.retrieve(inline["id"])
    assert (got.status, got.model, got.input_file_id) == ("completed", "default:sim-model", None)
    assert got.request_counts is not None and got.request_counts.total == 2
    assert (got.model_extra or {})["provider"] == "default"
    assert client.batches.retrieve(from_file.id).request_counts.completed == 1  # type: ignore[union-attr]
    page = http.get(f"/v1/batches/{from_file.id}/results", params={"after": 0})
    assert [json.loads(x)["custom_id"] for x in page.text.splitlines()] == ["f1"]  # JSONL still
    output = client.files.content(got.output_file_id or "").text  # the OpenAI-format file too
    assert [json.loads(x)["custom_id"] for x in output.splitlines()] == ["g1", "g2"]

    before = listed(http)
    r = http.post("/v1/batches", json={
        "input_file_id": fid, "endpoint": "/v1/chat/completions", "model": "sim-model",
        "requests": [req("x")], "completion_window": "24h",
    })  # fmt: skip
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert "endpoint, input_file_id are fields of an OpenAI batch" in message
    assert "model, requests of an inline gateway batch" in message
    with pytest.raises(openai.BadRequestError, match="input_file_id"):
        client.batches.create(input_file_id="", endpoint="/v1/chat/completions",
                              completion_window="24h", extra_body={"requests": []})  # fmt: skip
    assert listed(http) == before


def test_cancel_ends_unsent_requests_as_cancelled(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    sim.configure(latency_ms=150)
    srv = make_server(config=upstream_config("translated", sim, concurrency=2))
    http, client = srv.http(), srv.openai()
    bid = create(http, [req(f"r{i}") for i in range(12)])["id"]
    deadline = time.monotonic() + 20
    while not srv.store.count_rows(bid).get("succeeded") and time.monotonic() < deadline:
        time.sleep(0.02)
    running = results(http, bid)  # partial: finished rows only
    assert 1 <= len(running["results"]) < 12
    assert all(x["error"] is None for x in running["results"])

    cancelling = client.batches.cancel(bid)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    srv.wait_for(bid)
    done = http.get(f"/v1/batches/{bid}").json()
    check_batch(done)
    assert done["status"] == "cancelled" and done["cancelled_at"] is not None
    items = results(http, bid)["results"]
    assert [x["custom_id"] for x in items] == [f"r{i}" for i in range(12)]
    cancelled = [x for x in items if x["error"] is not None]
    assert cancelled and all(x["error"]["code"] == "batch_cancelled" for x in cancelled)
    assert all(x["result"] is None for x in cancelled)
    counts = done["request_counts"]
    assert counts["completed"] == 12 - len(cancelled) and counts["failed"] == len(cancelled)


# -- paging ----------------------------------------------------------------------------------------


def test_results_page_by_after_and_limit(server: ServerHandle) -> None:
    http = server.http()
    bid = create(http, [req(f"r{i}", model="fail-x" if i % 3 == 0 else None) for i in range(7)])[
        "id"
    ]
    server.wait_for(bid)
    everything = results(http, bid)["results"]
    seen, after, pages = [], 0, 0
    while True:
        page = results(http, bid, after=after, limit=3)
        pages += 1
        seen += page["results"]
        after = page["next_after"]
        if not page["has_more"]:
            break
    assert (pages, seen) == (3, everything)
    assert [x["error"] is not None for x in seen] == [i % 3 == 0 for i in range(7)]
    tail = results(http, bid, after=7, limit=5)
    assert tail == {"object": "list", "results": [], "has_more": False, "next_after": 7}
    assert http.get(f"/v1/batches/{bid}/results", params={"limit": 0}).status_code == 400


# -- create-time checks ----------------------------------------------------------------------------


def test_create_time_errors_are_located_and_leave_nothing(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    upstream = UpstreamConfig("sim", sim.url, models=("sim-model",))
    config = Config(upstreams=(upstream,), limits=Limits(max_lines=3))  # no default upstream
    srv = make_server(config=config)
    http = srv.http()
    ok = req("ok")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"requests": [ok]}, "model"),
        ({"model": "nowhere", "requests": [ok]}, "model"),
        ({"model": "sim-model"}, "requests"),
        ({"model": "sim-model", "requests": []}, "requests"),
        ({"model": "sim-model", "requests": [ok] * 4}, "requests"),
        ({"model": "sim-model", "requests": [ok, "x"]}, "requests.1"),
        ({"model": "sim-model", "requests": [ok, {"body": ok["body"]}]}, "requests.1.custom_id"),
        ({"model": "sim-model", "requests": [req("x" * 65)]}, "requests.0.custom_id"),
        ({"model": "sim-model", "requests": [ok, req("b"), ok]}, "requests.2.custom_id"),
        ({"model": "sim-model", "requests": [ok, {"custom_id": "b"}]}, "requests.1.body"),
        ({"model": "sim-model", "requests": [{"custom_id": "b", "body": []}]}, "requests.0.body"),
        ({"model": "sim-model", "requests": [{"custom_id": "b", "body": {}}]},
         "requests.0.body.messages"),
        ({"model": "sim-model", "requests": [req("b", model="")]}, "requests.0.body.model"),
        ({"model": "sim-model", "requests": [{"custom_id": "b", "body": {"messages": [1]}}]},
         "requests.0.body.messages.0"),
        ({"model": "sim-model", "requests": [ok, {"custom_id": "c", "body": {"messages": [
            {"role": "user", "content": "x"}, {"content": "no role"}]}}]},
         "requests.1.body.messages.1"),
        ({"model": "sim-model", "requests": [ok], "completion_window": "1d"}, "completion_window"),
        ({"model": "sim-model", "requests": [ok], "metadata": {"k": 1}}, "metadata"),
    ]  # fmt: skip
    for body, where in cases:
        r = http.post("/v1/batches", json=body)
        assert r.status_code == 400, (body, r.text)
        error = r.json()["error"]
        assert error["param"] == where, (where, error)
        assert error["message"].startswith(where + ":") or where in error["message"], error
    assert listed(http) == []
    assert list(srv.blobs.root.iterdir()) == []  # no requests blob left behind

    routed = create(http, [req("a", model="sim:other"), req("b")], model="sim-model")
    assert routed["provider"] == "sim"
    srv.wait_for(routed["id"])
    items = results(http, routed["id"])["results"]
    assert [x["error"] for x in items] == [None, None]
    assert items[0]["result"]["model"] == "other"


def test_the_batchgate_sdk_reads_a_gateway_batch_as_output_lines(server: ServerHandle) -> None:
    """The SDK (and so ``batchgate results``) asks for JSONL: it gets OpenAI output lines."""
    from batchgate.client import Client

    http = server.http()
    batch = create(http, [req("a"), req("b", model="fail-x"), req("c")])
    with Client(server.url) as client:
        done = client.batches.wait_for(batch["id"], poll_interval=0.02, timeout=30)
        got = client.batches.results(batch["id"])
    assert done.counts.total == 3
    assert [(r.custom_id, r.status_code) for r in got] == [("a", 200), ("b", 400), ("c", 200)]
    assert results(http, batch["id"])["results"][0]["custom_id"] == "a"  # JSON by default
