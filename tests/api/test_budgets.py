"""Budgets on a live server: a batch's own budget (``budget_usd`` at create, in every dialect)
and a tenant's, each stopping the spend within one request's cost of its cap while requests run
concurrently; the rows not sent end with ``budget_exceeded`` and the batch ends normally."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from anthropic.types.messages import MessageBatch
from openai.types import Batch

from batchgate.domain.budget import EXCEEDED
from batchgate.domain.cost import usd
from batchgate.sim import SimHandle
from tests.api.test_auth import bearer, make_key
from tests.api.test_cost import PIN, POUT, priced_config, rows
from tests.helpers.servers import ServerHandle

CHAT = "/v1/chat/completions"


def _lines(n: int, model: str = "sim-model", prefix: str = "q") -> bytes:
    return b"".join(
        json.dumps({
            "custom_id": f"{prefix}{i}", "method": "POST", "url": CHAT,
            "body": {"model": model, "max_tokens": 16,
                     "messages": [{"role": "user", "content": f"tell me about {i} " * 3}]},
        }).encode() + b"\n"
        for i in range(n)
    )  # fmt: skip


def _busy_server(make_server: Callable[..., ServerHandle], sim: SimHandle) -> ServerHandle:
    """16 requests at a time, each taking a while: without reservations a budget would be
    overshot by up to the whole in-flight window."""
    sim.configure(latency_ms=30, jitter_ms=20)
    return make_server(config=priced_config(sim))


def _error_lines(
    srv: ServerHandle, doc: dict[str, Any], headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    if doc["error_file_id"] is None:
        return []
    text = srv.http().get(f"/v1/files/{doc['error_file_id']}/content", headers=headers).text
    return [json.loads(line) for line in text.splitlines()]


def assert_stopped_within_one_request(srv: ServerHandle, doc: dict[str, Any], cap: int) -> int:
    """The batch reached its cap, passed it by less than its dearest request, and every row
    it did not send ended ``budget_exceeded``; returns how many were sent."""
    got = rows(srv, doc["id"])
    sent = [r for r in got if r[3] == "succeeded"]
    assert [r for r in got if r[3] != "succeeded"] == [(0, 0, None, "failed")] * (
        len(got) - len(sent)
    )  # never sent: no tokens, no cost
    for inp, out, cost, _ in sent:
        assert cost == inp * PIN + out * POUT
    total, dearest = sum(r[2] for r in sent), max(r[2] for r in sent)
    assert doc["cost"] == {"ticks": total, "usd": usd(total), "priced": True}
    assert cap <= total < cap + dearest, (cap, total, dearest)
    return len(sent)


def test_a_batch_budget_stops_the_spend_within_one_request_of_its_cap(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = _busy_server(make_server, sim)
    client = srv.openai()
    fid = client.files.create(file=("in.jsonl", _lines(200)), purpose="batch").id
    cap = 150_000  # ticks: about 25 of these requests
    b = client.batches.create(
        input_file_id=fid, endpoint=CHAT, completion_window="24h",
        extra_body={"budget_usd": usd(cap)},
    )  # fmt: skip
    assert b.model_extra is not None and b.model_extra["budget"] == {
        "ticks": cap, "usd": "0.000150000", "reached": False,
    }  # fmt: skip
    row = srv.wait_for(b.id)
    assert row["status"] == "completed"  # the batch ends normally with what it finished
    raw = srv.http().get(f"/v1/batches/{b.id}").json()
    Batch.model_validate(raw, strict=True)
    assert raw["budget"]["reached"] is True
    sent = assert_stopped_within_one_request(srv, raw, cap)
    assert 10 < sent < 60
    assert sim.stats()["requests"] == sent  # nothing was sent beyond what was recorded
    assert raw["request_counts"] == {"total": 200, "completed": sent, "failed": 200 - sent}
    errors = _error_lines(srv, raw)
    assert len(errors) == 200 - sent
    assert {e["error"]["code"] for e in errors} == {EXCEEDED}
    assert "the batch reached its budget of 0.000150000 USD" in errors[0]["error"]["message"]
    assert sim.stats()["max_in_flight"] > 1  # the requests did run concurrently


def test_a_tenant_budget_spans_the_tenants_batches(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = _busy_server(make_server, sim)
    key, other = make_key(srv.store, "alice", tenant="team"), make_key(srv.store, "bob")
    cap = 120_000
    srv.store.set_budget("team", cap, "month", 0)
    http = srv.http()
    made = []
    for who, n in ((key, 80), (key, 80), (other, 20)):
        fid = http.post(
            "/v1/files", headers=bearer(who), data={"purpose": "batch"},
            files={"file": ("in.jsonl", _lines(n))},
        ).json()["id"]  # fmt: skip
        r = http.post("/v1/batches", headers=bearer(who), json={
            "input_file_id": fid, "endpoint": CHAT, "completion_window": "24h",
        })  # fmt: skip
        assert r.status_code == 200, r.text
        made.append(r.json()["id"])
    docs = []
    for bid, who in zip(made, (key, key, other), strict=True):
        srv.wait_for(bid)
        docs.append(http.get(f"/v1/batches/{bid}", headers=bearer(who)).json())
    team = [r for d in docs[:2] for r in rows(srv, d["id"]) if r[3] == "succeeded"]
    spent, dearest = sum(r[2] for r in team), max(r[2] for r in team)
    assert cap <= spent < cap + dearest
    (entry,) = http.get("/v1/budgets", headers=bearer(key)).json()["data"]
    assert entry == {
        "tenant": "team", "period": "month", "budget": {"ticks": cap, "usd": usd(cap)},
        "spent": {"ticks": spent, "usd": usd(spent)},
        "reserved": {"ticks": 0, "usd": "0.000000000"}, "reached": True,
    }  # fmt: skip
    assert http.get("/v1/budgets", headers=bearer(other)).json() == {"object": "list", "data": []}
    assert docs[2]["request_counts"]["completed"] == 20  # bob has no budget
    stopped = [e for d in docs[:2] for e in _error_lines(srv, d, bearer(key))]
    assert stopped and {e["error"]["code"] for e in stopped} == {EXCEEDED}
    assert (
        "tenant 'team' reached its budget of 0.000120000 USD this month"
        in (stopped[0]["error"]["message"])
    )


def test_every_dialect_takes_a_budget_and_ends_unsent_rows_in_its_own_words(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(config=priced_config(sim))
    http = srv.http()
    body = {"model": "sim-model", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    # A budget of 0 is reached before anything is sent.
    r = http.post("/v1/batches", json={
        "model": "sim:sim-model", "requests": [{"custom_id": "a", "body": body}],
        "budget_usd": 0,
    })  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["budget"] == {"ticks": 0, "usd": "0.000000000", "reached": True}
    srv.wait_for(r.json()["id"])
    (item,) = http.get(f"/v1/batches/{r.json()['id']}/results").json()["results"]
    assert item["result"] is None and item["error"]["code"] == EXCEEDED

    r = http.post("/v1/messages/batches", json={
        "requests": [{"custom_id": "m", "params": body}], "budget_usd": "0",
    })  # fmt: skip
    assert r.status_code == 200, r.text
    srv.wait_for(r.json()["id"])
    doc = http.get(f"/v1/messages/batches/{r.json()['id']}").json()
    MessageBatch.model_validate(doc)
    assert doc["budget"]["ticks"] == 0 and doc["request_counts"]["errored"] == 1
    line = json.loads(http.get(f"/v1/messages/batches/{doc['id']}/results").text)
    assert line["result"]["type"] == "errored"
    assert line["result"]["error"]["error"]["type"] == "billing_error"

    r = http.post("/qai/v1/batch", json={
        "jobs": [{"model": "sim-model", "prompt": "2+2?"}], "budget_usd": 0,
    })  # fmt: skip
    assert r.status_code == 200, r.text
    (job_id,) = r.json()["job_ids"]
    (batch,) = srv.store.list_batches(None, after=None, limit=10, dialect="jobs")[0]
    srv.wait_for(batch.id)
    job = http.get(f"/qai/v1/batch/jobs/{job_id}").json()
    assert job["status"] == "failed" and "reached its budget" in job["error"]
    assert sim.stats()["requests"] == 0


def test_under_a_budget_a_row_of_an_unpriced_model_fails_with_the_reason(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(config=priced_config(sim))
    client = srv.openai()
    mixed = _lines(1, prefix="priced") + _lines(1, model="free:x", prefix="free")
    fid = client.files.create(file=("in.jsonl", mixed), purpose="batch").id
    b = client.batches.create(
        input_file_id=fid, endpoint=CHAT, completion_window="24h", extra_body={"budget_usd": 1}
    )
    srv.wait_for(b.id)
    raw = srv.http().get(f"/v1/batches/{b.id}").json()
    assert raw["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    (err,) = _error_lines(srv, raw)
    assert err["custom_id"] == "free0" and err["error"]["code"] == "unpriced_model"
    assert "Line 2: model 'x' of provider 'free' has no price" in err["error"]["message"]
    assert raw["cost"]["priced"] is True  # the unpriced row was never sent


@pytest.mark.parametrize("value", [-1, "abc", True, "1e10", [1], "NaN"])
def test_a_bad_budget_is_a_located_400_in_every_dialect(server: ServerHandle, value: Any) -> None:
    http = server.http()
    body = {"model": "sim-model", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}
    fid = http.post(
        "/v1/files", data={"purpose": "batch"}, files={"file": ("in.jsonl", _lines(1))}
    ).json()["id"]
    answers = {
        "openai": http.post("/v1/batches", json={
            "input_file_id": fid, "endpoint": CHAT, "completion_window": "24h",
            "budget_usd": value,
        }),
        "gateway": http.post("/v1/batches", json={
            "model": "sim-model", "requests": [{"custom_id": "a", "body": body}],
            "budget_usd": value,
        }),
        "anthropic": http.post("/v1/messages/batches", json={
            "requests": [{"custom_id": "a", "params": body}], "budget_usd": value,
        }),
        "jobs": http.post("/qai/v1/batch", json={
            "jobs": [{"model": "sim-model", "prompt": "x"}], "budget_usd": value,
        }),
    }  # fmt: skip
    for dialect, r in answers.items():
        assert r.status_code == 400, (dialect, r.text)
        assert "Invalid 'budget_usd'" in r.text and "USD" in r.text, (dialect, r.text)
    assert answers["openai"].json()["error"]["param"] == "budget_usd"
    assert answers["gateway"].json()["error"]["param"] == "budget_usd"
    assert answers["anthropic"].json()["error"]["type"] == "invalid_request_error"
    assert server.store.list_batches(None, after=None, limit=10)[0] == []  # nothing half-made
