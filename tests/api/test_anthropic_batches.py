"""The Anthropic Message Batches API (wire spec §3) through the official anthropic SDK and raw
HTTP, against a live server whose upstream is either OpenAI-compatible (the requests are
translated, §4) or Anthropic-format (``/v1/messages``, sent as they are)."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic.types.messages import (
    DeletedMessageBatch,
    MessageBatch,
    MessageBatchIndividualResponse,
)
from sqlalchemy import update

from batchgate.config import Config, Limits, UpstreamConfig, single_upstream
from batchgate.sim import SimHandle
from batchgate.storage.schema import batches
from tests.helpers.servers import ServerHandle

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
BATCH_KEYS = {
    "id", "type", "processing_status", "request_counts", "created_at", "expires_at", "ended_at",
    "cancel_initiated_at", "archived_at", "results_url",
    "cost",  # batchgate's extension field: {"ticks", "usd", "priced"}
    "budget",  # batchgate's extension field: null, or {"ticks", "usd", "reached"}
    "upstreams",  # batchgate's extension field: [{"name", "state", "since", "last_error"}]
    "retry_of",  # batchgate's extension field: null, or the batch this one retries
}  # fmt: skip
COUNT_KEYS = {"processing", "succeeded", "errored", "canceled", "expired"}


# -- helpers ---------------------------------------------------------------------------------------


def upstream_config(kind: str, sim: SimHandle, concurrency: int = 8) -> Config:
    """``translated``: the simulator as an OpenAI-compatible upstream (Messages → chat);
    ``native``: the simulator as an Anthropic-format upstream (``POST …/v1/messages``)."""
    if kind == "translated":
        return single_upstream(sim.url, concurrency=concurrency, timeout=5.0)
    upstream = UpstreamConfig("claude", sim.url, kind="anthropic", concurrency=concurrency)
    return Config(upstreams=(upstream,), default_upstream="claude")


def client_for(srv: ServerHandle) -> anthropic.Anthropic:
    client = anthropic.Anthropic(base_url=srv.url, api_key="k", max_retries=0, timeout=30)
    srv.clients.append(client)
    return client


def req(cid: str, text: str | None = None, **params: Any) -> dict[str, Any]:
    """One Message Batches request; ``max_tokens=None`` leaves max_tokens out."""
    body: dict[str, Any] = {
        "model": "sim-model",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text or f"hello {cid}"}],
        **params,
    }
    return {"custom_id": cid, "params": {k: v for k, v in body.items() if v is not None}}


def wait_rows(srv: ServerHandle, batch_id: str, **at_least: int) -> None:
    """Wait until the batch's rows reach at least the given count per state."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        counts = srv.store.count_rows(batch_id)
        if all(counts.get(state, 0) >= n for state, n in at_least.items()):
            return
        time.sleep(0.02)
    raise AssertionError(f"no progress on {batch_id}: {srv.store.count_rows(batch_id)}")


def results_by_id(
    client: anthropic.Anthropic, batch_id: str
) -> dict[str, MessageBatchIndividualResponse]:
    results = list(client.messages.batches.results(batch_id))
    ids = [r.custom_id for r in results]
    assert len(ids) == len(set(ids)), Counter(ids).most_common(3)
    return {r.custom_id: r for r in results}


def assert_counts_match(batch: MessageBatch, results: dict[str, Any]) -> Counter[str]:
    """An ended batch's request_counts are its results counted by type."""
    by_type = Counter(r.result.type for r in results.values())
    counts = batch.request_counts
    assert counts.processing == 0
    assert counts.succeeded == by_type["succeeded"]
    assert counts.errored == by_type["errored"]
    assert counts.canceled == by_type["canceled"]
    assert counts.expired == by_type["expired"]
    assert sum(counts.model_dump().values()) == len(results)  # every request counted once
    return by_type


def assert_ended(srv: ServerHandle, batch: MessageBatch) -> None:
    assert batch.processing_status == "ended"
    assert batch.ended_at is not None
    assert batch.created_at <= batch.ended_at <= datetime.now(UTC) + timedelta(seconds=2)
    assert batch.results_url == f"{srv.url}/v1/messages/batches/{batch.id}/results"


def check_errored(result: Any, kind: str, *fragments: str) -> None:
    assert result.type == "errored"
    assert result.error.type == "error"
    assert result.error.error.type == kind
    for fragment in fragments:
        assert fragment in result.error.error.message


@pytest.fixture(params=["translated", "native"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def srv(kind: str, make_server: Callable[..., ServerHandle], sim: SimHandle) -> ServerHandle:
    return make_server(config=upstream_config(kind, sim))


# -- the life of a batch: all four result types ----------------------------------------------------


def test_lifecycle_with_every_result_type(
    kind: str, db_url: str, make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    sim.configure(latency_ms=200)
    srv = make_server(db_url, config=upstream_config(kind, sim, concurrency=2))
    client = client_for(srv)
    n_slow = 24

    # Batch A: two errored requests first, then slow ones; cancelled mid-way.
    requests = [
        req("bad-model", model="fail-model"),
        req("no-max", max_tokens=None),
        *(req(f"a-{i}") for i in range(n_slow)),
    ]
    a = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert a.id.startswith("msgbatch_") and a.type == "message_batch"
    assert a.processing_status == "in_progress"
    assert a.request_counts.model_dump() == {
        "processing": n_slow + 2, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0,
    }  # fmt: skip
    assert a.ended_at is None and a.results_url is None and a.cancel_initiated_at is None
    assert a.expires_at - a.created_at == timedelta(hours=24)

    got = client.messages.batches.retrieve(a.id)
    assert (got.id, got.created_at, got.expires_at) == (a.id, a.created_at, a.expires_at)
    assert got.processing_status == "in_progress"
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        client.messages.batches.results(a.id)  # no results_url yet: the SDK stops locally

    wait_rows(srv, a.id, succeeded=2, failed=2)
    mid = client.messages.batches.retrieve(a.id)
    assert mid.processing_status == "in_progress"
    assert sum(mid.request_counts.model_dump().values()) == n_slow + 2
    assert mid.request_counts.errored == 2 and mid.request_counts.succeeded >= 2
    assert 0 < mid.request_counts.processing < n_slow

    c = client.messages.batches.cancel(a.id)
    assert c.processing_status == "canceling"
    assert c.cancel_initiated_at is not None and c.cancel_initiated_at >= c.created_at
    assert c.results_url is None and c.ended_at is None

    srv.wait_for(a.id, timeout=20)
    done = client.messages.batches.retrieve(a.id)
    assert_ended(srv, done)
    assert done.cancel_initiated_at == c.cancel_initiated_at
    assert done.ended_at is not None and done.ended_at >= c.cancel_initiated_at
    results = results_by_id(client, a.id)
    assert set(results) == {r["custom_id"] for r in requests}
    by_type = assert_counts_match(done, results)
    assert by_type["errored"] == 2
    assert by_type["succeeded"] >= 2 and by_type["canceled"] >= 1
    check_errored(results["no-max"].result, "invalid_request_error", "max_tokens")
    if kind == "translated":  # OpenAI-compatible upstreams answer an unknown model 400
        check_errored(results["bad-model"].result, "invalid_request_error", "fail-model")
    else:  # Anthropic answers it 404 not_found_error
        check_errored(results["bad-model"].result, "not_found_error", "fail-model")
    for cid in (f"a-{i}" for i in range(n_slow)):
        result = results[cid].result
        assert result.type in ("succeeded", "canceled")
        if result.type == "succeeded":
            assert result.message.type == "message" and result.message.role == "assistant"
            assert result.message.content[0].type == "text"
            assert f"hello {cid}" in result.message.content[0].text

    # Batch B: slow requests, expired mid-way by moving expires_at into the past.
    b = client.messages.batches.create(requests=[req(f"b-{i}") for i in range(n_slow)])
    wait_rows(srv, b.id, succeeded=2)
    past = int(time.time()) - 1
    with srv.store.write() as conn:
        conn.execute(update(batches).where(batches.c.id == b.id).values(expires_at=past))
    srv.wait_for(b.id, timeout=20)
    done_b = client.messages.batches.retrieve(b.id)
    assert_ended(srv, done_b)
    assert done_b.cancel_initiated_at is None
    assert done_b.expires_at == datetime.fromtimestamp(past, UTC)
    results_b = results_by_id(client, b.id)
    assert set(results_b) == {f"b-{i}" for i in range(n_slow)}
    by_type_b = assert_counts_match(done_b, results_b)
    assert by_type_b["succeeded"] >= 2 and by_type_b["expired"] >= 1
    assert by_type_b["errored"] == by_type_b["canceled"] == 0

    # Nothing was sent upstream that did not become a result (fail-model once, not retried).
    assert sim.stats()["requests"] == by_type["succeeded"] + 1 + by_type_b["succeeded"]


# -- listing ---------------------------------------------------------------------------------------


def test_list_pages_both_ways(srv: ServerHandle) -> None:
    client = client_for(srv)
    ids = [client.messages.batches.create(requests=[req(f"r{i}")]).id for i in range(5)]
    oc = srv.openai()
    fid = oc.files.create(
        file=("in.jsonl", json.dumps({
            "custom_id": "x", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "sim-model", "messages": [{"role": "user", "content": "x"}]},
        }).encode()), purpose="batch",
    ).id  # fmt: skip
    openai_batch = oc.batches.create(
        input_file_id=fid, endpoint="/v1/chat/completions", completion_window="24h"
    )
    newest = ids[::-1]  # c4, c3, c2, c1, c0

    def page(**kw: Any) -> Any:
        return client.messages.batches.list(**kw)

    p = page(limit=2)
    assert [b.id for b in p.data] == newest[:2]
    assert (p.has_more, p.first_id, p.last_id) == (True, newest[0], newest[1])
    p = page(limit=2, after_id=newest[1])
    assert [b.id for b in p.data] == newest[2:4]
    assert (p.has_more, p.first_id, p.last_id) == (True, newest[2], newest[3])
    p = page(limit=2, after_id=newest[3])
    assert [b.id for b in p.data] == newest[4:]
    assert (p.has_more, p.first_id, p.last_id) == (False, newest[4], newest[4])
    p = page(after_id=newest[4])
    assert (p.data, p.has_more, p.first_id, p.last_id) == ([], False, None, None)

    p = page(limit=2, before_id=newest[4])  # the 2 just newer than the oldest, newest first
    assert [b.id for b in p.data] == newest[2:4]
    assert (p.has_more, p.first_id, p.last_id) == (True, newest[2], newest[3])
    p = page(limit=2, before_id=newest[2])
    assert [b.id for b in p.data] == newest[:2]
    assert (p.has_more, p.first_id, p.last_id) == (False, newest[0], newest[1])
    p = page(limit=3, before_id=newest[0])
    assert (p.data, p.has_more) == ([], False)

    p = page()  # default limit 20
    assert [b.id for b in p.data] == newest and p.has_more is False
    assert openai_batch.id not in {b.id for b in p.data}
    assert [b.id for b in oc.batches.list()] == [openai_batch.id]

    # Auto-pagination: forwards by after_id, and backwards by before_id (SDK uses first_id).
    assert [b.id for b in page(limit=2)] == newest
    backwards = [b.id for b in page(limit=2, before_id=newest[4])]
    assert backwards == newest[2:4] + newest[:2]
    assert len(set(backwards)) == len(backwards)

    for bad in ({"limit": 0}, {"limit": 1001}, {"after_id": ids[0], "before_id": ids[1]}):
        with pytest.raises(anthropic.BadRequestError) as exc:
            page(**bad)
        assert exc.value.status_code == 400
        assert isinstance(exc.value.body, dict)
        assert exc.value.body["error"]["type"] == "invalid_request_error"
    assert [b.id for b in page(limit=1000)] == newest  # the upper bound is allowed


# -- delete ----------------------------------------------------------------------------------------


def test_delete_only_once_ended(
    kind: str, make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    sim.configure(latency_ms=200)
    srv = make_server(config=upstream_config(kind, sim, concurrency=2))
    client = client_for(srv)
    b = client.messages.batches.create(requests=[req(f"d{i}") for i in range(10)])

    with pytest.raises(anthropic.BadRequestError) as exc:
        client.messages.batches.delete(b.id)
    assert exc.value.status_code == 400
    assert isinstance(exc.value.body, dict)
    assert exc.value.body["error"]["type"] == "invalid_request_error"
    assert "cancel" in exc.value.body["error"]["message"]
    assert client.messages.batches.retrieve(b.id).processing_status == "in_progress"

    client.messages.batches.cancel(b.id)
    srv.wait_for(b.id, timeout=20)
    ended = client.messages.batches.retrieve(b.id)
    assert ended.processing_status == "ended"
    assert len(list(client.messages.batches.results(b.id))) == 10
    row = srv.store.get_batch(b.id)
    assert row is not None and row.output_file_id
    blob = srv.blobs.path(row.output_file_id)
    assert blob.exists()

    deleted = client.messages.batches.delete(b.id)
    assert isinstance(deleted, DeletedMessageBatch)
    assert (deleted.id, deleted.type) == (b.id, "message_batch_deleted")
    assert not blob.exists()
    assert srv.store.get_batch(b.id) is None

    with pytest.raises(anthropic.NotFoundError) as nf:
        client.messages.batches.retrieve(b.id)
    body = nf.value.body
    assert isinstance(body, dict)
    assert set(body) == {"type", "error", "request_id"}
    assert body["type"] == "error"
    assert body["error"] == {"type": "not_found_error", "message": body["error"]["message"]}
    assert b.id in body["error"]["message"]
    assert body["request_id"] == nf.value.request_id == nf.value.response.headers["request-id"]
    assert str(body["request_id"]).startswith("req_")
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.delete(b.id)
    http = srv.http()
    assert http.get(f"/v1/messages/batches/{b.id}/results").status_code == 404
    assert b.id not in {x.id for x in client.messages.batches.list()}


# -- create-time validation ------------------------------------------------------------------------


def test_create_rejects_bad_custom_ids(srv: ServerHandle) -> None:
    client = client_for(srv)
    cases: list[tuple[list[dict[str, Any]], str]] = [
        ([req("ok"), req("has space")], "requests.1.custom_id"),
        ([req("x" * 65)], "requests.0.custom_id"),
        ([req("a"), req("b"), req("a")], "requests.2.custom_id"),
        ([req("a"), req("")], "requests.1.custom_id"),
        ([req("a"), req("é")], "requests.1.custom_id"),
        ([req("a"), {"custom_id": "b"}], "requests.1.params"),
        ([req("a"), "b"], "requests.1"),
        ([], "requests"),
    ]
    for requests, where in cases:
        with pytest.raises(anthropic.BadRequestError) as exc:
            client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        err = exc.value
        assert err.status_code == 400
        assert isinstance(err.body, dict)
        assert err.body["type"] == "error"
        assert err.body["error"]["type"] == "invalid_request_error"
        assert err.body["error"]["message"].startswith(where + ":"), err.body
        assert err.request_id == err.response.headers["request-id"]
    with pytest.raises(anthropic.BadRequestError, match="requests"):
        client.post("/v1/messages/batches", body={}, cast_to=MessageBatch)
    assert client.messages.batches.list().data == []  # nothing was created

    ok = client.messages.batches.create(requests=[req("y" * 64), req("A_b-9")])
    assert ok.request_counts.processing == 2
    srv.wait_for(ok.id)
    assert set(results_by_id(client, ok.id)) == {"y" * 64, "A_b-9"}


def test_create_over_this_servers_limits_is_rejected_at_once(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    """A batch the worker would refuse (more lines or bytes than the server's limits) is a
    create-time error, not a batch that ends with no results."""
    limits = Limits(max_lines=3, max_file_bytes=4000)
    srv = make_server(config=upstream_config("translated", sim), limits=limits)
    client = client_for(srv)
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.messages.batches.create(requests=[req(f"r{i}") for i in range(4)])
    assert isinstance(exc.value.body, dict)
    assert exc.value.body["error"]["type"] == "invalid_request_error"
    message = exc.value.body["error"]["message"]
    assert message.startswith("requests:") and "3" in message and "4" in message
    with pytest.raises(anthropic.RequestTooLargeError) as big:
        client.messages.batches.create(requests=[req("big", "x" * 5000)])
    assert big.value.status_code == 413
    assert isinstance(big.value.body, dict)
    assert big.value.body["error"]["type"] == "request_too_large"
    assert client.messages.batches.list().data == []
    assert [p.name for p in srv.blobs.root.iterdir()] == []  # no blob left behind

    ok = client.messages.batches.create(requests=[req(f"r{i}") for i in range(3)])
    srv.wait_for(ok.id)
    done = client.messages.batches.retrieve(ok.id)
    results = results_by_id(client, ok.id)
    assert assert_counts_match(done, results) == Counter({"succeeded": 3})


def test_cancel_before_validation_ends_with_every_request_canceled(
    make_server: Callable[..., ServerHandle], sim: SimHandle, sqlite_url: str, tmp_path: Path
) -> None:
    config = upstream_config("translated", sim)
    shared = tmp_path / "shared-data"  # the worker reads the blobs the API wrote
    api_only = make_server(sqlite_url, config=config, worker=False, data_dir=shared)
    client = client_for(api_only)
    b = client.messages.batches.create(requests=[req("a"), req("b")])
    assert client.messages.batches.cancel(b.id).processing_status == "canceling"
    make_server(sqlite_url, config=config, data_dir=shared)  # a worker on the same state
    api_only.wait_for(b.id, timeout=3)
    done = client.messages.batches.retrieve(b.id)
    assert done.processing_status == "ended"
    results = results_by_id(client, b.id)
    assert assert_counts_match(done, results) == Counter({"canceled": 2})
    assert sim.stats()["requests"] == 0


# -- raw HTTP: timestamps, envelopes, headers, the results body ------------------------------------


def test_raw_http_wire_details(
    kind: str, srv: ServerHandle, make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    http = srv.http()
    old_style = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    beta = {**old_style, "anthropic-beta": "message-batches-2024-09-24"}
    bearer = {"authorization": "Bearer k", "anthropic-version": "2026-10-21"}
    body = {"requests": [req("one", "first question"), req("two", "second question")]}
    before = datetime.now(UTC).replace(microsecond=0)

    r = http.post("/v1/messages/batches?beta=true", json=body, headers=beta)
    assert r.status_code == 200, r.text
    assert r.headers["request-id"].startswith("req_")
    created = r.json()
    assert set(created) == BATCH_KEYS
    assert set(created["request_counts"]) == COUNT_KEYS
    for name in ("created_at", "expires_at"):
        assert RFC3339.match(created[name]), created[name]
    batch = MessageBatch.model_validate_json(r.text, strict=True)
    assert before <= batch.created_at <= datetime.now(UTC)
    assert batch.expires_at == batch.created_at + timedelta(hours=24)
    bid = batch.id

    srv.wait_for(bid)
    for headers in (old_style, bearer, beta):
        for suffix in ("", "?beta=true"):
            r = http.get(f"/v1/messages/batches/{bid}{suffix}", headers=headers)
            assert r.status_code == 200, r.text
            ended = MessageBatch.model_validate_json(r.text, strict=True)
            assert ended.processing_status == "ended"
    doc = r.json()
    assert set(doc) == BATCH_KEYS
    for name in ("created_at", "expires_at", "ended_at"):
        assert RFC3339.match(doc[name]), doc[name]
    assert doc["cancel_initiated_at"] is None and doc["archived_at"] is None
    assert doc["results_url"] == f"{srv.url}/v1/messages/batches/{bid}/results"

    r = http.get("/v1/messages/batches?beta=true&limit=1", headers=bearer)
    assert r.status_code == 200
    listed = r.json()
    assert set(listed) == {"data", "has_more", "first_id", "last_id"}
    assert (listed["has_more"], listed["first_id"], listed["last_id"]) == (False, bid, bid)
    MessageBatch.model_validate_json(json.dumps(listed["data"][0]), strict=True)

    # The results body: compact JSONL, one object per line, no blank lines.
    r = http.get(doc["results_url"], headers={**bearer, "accept": "application/binary"})
    assert r.status_code == 200
    text = r.text
    assert text.endswith("\n") and "\n\n" not in text and not text.startswith("\n")
    lines = text[:-1].split("\n")
    assert len(lines) == 2
    for line in lines:
        obj = json.loads(line)
        assert line == json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        assert set(obj) == {"custom_id", "result"}
        assert obj["result"]["type"] == "succeeded"
        MessageBatchIndividualResponse.model_validate_json(line, strict=True)
    assert sorted(json.loads(x)["custom_id"] for x in lines) == ["one", "two"]

    # Errors: the Anthropic envelope plus request-id, whatever went wrong.
    problems = [
        http.get("/v1/messages/batches/msgbatch_nope", headers=bearer),
        http.get("/v1/messages/batches/msgbatch_nope/results", headers=old_style),
        http.get("/v1/messages/batches/msgbatch_nope/elsewhere", headers=bearer),
        http.post("/v1/messages/batches", content=b"{not json", headers=bearer),
        http.post("/v1/messages/batches", json={"requests": "nope"}, headers=bearer),
        http.get("/v1/messages/batches?limit=abc", headers=bearer),
    ]
    expected = [
        (404, "not_found_error"), (404, "not_found_error"), (404, "not_found_error"),
        (400, "invalid_request_error"), (400, "invalid_request_error"),
        (400, "invalid_request_error"),
    ]  # fmt: skip
    for resp, (status, error_type) in zip(problems, expected, strict=True):
        assert resp.status_code == status, resp.text
        err = resp.json()
        assert set(err) == {"type", "error", "request_id"}, err
        assert err["type"] == "error"
        assert set(err["error"]) == {"type", "message"}
        assert err["error"]["type"] == error_type
        assert isinstance(err["error"]["message"], str) and err["error"]["message"]
        assert err["request_id"] == resp.headers["request-id"]
    ids = [resp.headers["request-id"] for resp in problems]
    assert len(set(ids)) == len(ids)

    # An API-only server (no worker): the batch stays in progress; cancel with an empty body.
    api_only = make_server(config=upstream_config(kind, sim), worker=False)
    raw = api_only.http()
    r = raw.post("/v1/messages/batches", json=body, headers=old_style)
    pending = r.json()["id"]
    r = raw.get(f"/v1/messages/batches/{pending}/results", headers=old_style)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = raw.post(
        f"/v1/messages/batches/{pending}/cancel",
        headers={**bearer, "content-type": "application/json", "content-length": "0"},
    )
    assert r.status_code == 200, r.text
    canceling = MessageBatch.model_validate_json(r.text, strict=True)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None and canceling.results_url is None
    assert RFC3339.match(r.json()["cancel_initiated_at"])
    r = raw.delete(f"/v1/messages/batches/{pending}", headers=bearer)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
