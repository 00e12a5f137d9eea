"""Retry what failed, on the server: ``POST …/retry`` makes a new batch of an ended batch's
failed lines, in every dialect, against a live server and the simulator.

The failures are real upstream answers: lines whose model starts with the simulator's
``fail_model_prefix`` get a 400. The simulator is then told to stop failing them (as an upstream
fixed in the meantime), so the retry's lines succeed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchgate.config import Config, Price, UpstreamConfig, single_upstream
from batchgate.sim import SimHandle
from tests.api.test_anthropic_batches import req as message_req
from tests.api.test_anthropic_batches import wait_rows
from tests.api.test_gateway import req as gateway_req
from tests.helpers.servers import ServerHandle

CHAT = "/v1/chat/completions"


def _line(cid: str, model: str = "sim-model") -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": f"say {cid}"}]}
    doc = {"custom_id": cid, "method": "POST", "url": CHAT, "body": body}
    return json.dumps(doc, separators=(", ", ": ")).encode()  # not orjson's spacing: bytes kept


def _openai_batch(srv: ServerHandle, lines: list[bytes], **extra: Any) -> str:
    client = srv.openai()
    fid = client.files.create(file=("in.jsonl", b"\n".join(lines) + b"\n"), purpose="batch").id
    return client.batches.create(
        input_file_id=fid, endpoint=CHAT, completion_window="24h", **extra
    ).id


def _retry(http: httpx.Client, path: str, body: Any = None, status: int = 200) -> Any:
    r = http.post(path, json=body) if body is not None else http.post(path)
    assert r.status_code == status, r.text
    return r.json()


def _counts(srv: ServerHandle) -> tuple[int, int]:
    """How many batches and files the server holds (a refused retry leaves none behind)."""
    with srv.store.read() as conn:
        batches = conn.exec_driver_sql("SELECT COUNT(*) FROM batches").scalar_one()
        files = conn.exec_driver_sql("SELECT COUNT(*) FROM files").scalar_one()
    return int(batches), int(files)


@pytest.fixture
def srv(make_server: Callable[..., ServerHandle]) -> ServerHandle:
    return make_server()


def test_openai_retry_holds_the_failed_lines_byte_for_byte_and_succeeds(
    srv: ServerHandle, sim: SimHandle
) -> None:
    lines = [_line("a"), _line("b", "fail-x"), _line("c"), _line("d", "fail-y"), _line("e")]
    bid = _openai_batch(srv, lines, metadata={"run": "nightly"})
    assert srv.wait_for(bid)["failed"] == 2
    sim.configure(fail_model_prefix="")  # the upstream now serves those models

    http = srv.http()
    doc = _retry(http, f"/v1/batches/{bid}/retry")
    assert doc["object"] == "batch" and doc["id"] != bid and doc["status"] == "validating"
    assert doc["metadata"] == {"run": "nightly", "retry_of": bid}
    assert (doc["endpoint"], doc["completion_window"]) == (CHAT, "24h")
    client = srv.openai()
    new_file = client.files.retrieve(doc["input_file_id"])
    assert (new_file.purpose, new_file.filename) == ("batch", f"retry-of-{bid}.jsonl")
    assert client.files.content(doc["input_file_id"]).content == lines[1] + b"\n" + lines[3] + b"\n"

    done = srv.wait_for(doc["id"])
    assert (done["status"], done["total"], done["completed"], done["failed"]) == (
        "completed", 2, 2, 0,
    )  # fmt: skip
    out = client.files.content(client.batches.retrieve(doc["id"]).output_file_id or "").text
    assert [json.loads(x)["custom_id"] for x in out.splitlines()] == ["b", "d"]
    assert srv.store.get_batch(bid) is not None  # the original is left as it was
    assert srv.wait_for(bid)["failed"] == 2


def test_error_codes_pick_the_lines_and_a_retry_with_nothing_to_send_leaves_nothing(
    srv: ServerHandle, sim: SimHandle
) -> None:
    bid = _openai_batch(srv, [_line("a"), _line("b", "fail-x")])
    srv.wait_for(bid)
    http = srv.http()
    before = _counts(srv)
    err = _retry(http, f"/v1/batches/{bid}/retry", {"error_codes": ["upstream_unreachable"]}, 400)
    assert err["error"]["code"] == "nothing_to_retry"
    assert "upstream_unreachable" in err["error"]["message"]
    assert _counts(srv) == before  # no batch, no file, no blob
    assert sorted(p.name for p in srv.blobs.root.iterdir() if p.name.startswith("file-")) == (
        sorted(f.id for f in srv.openai().files.list().data)
    )
    row = srv.store.rows_after(bid, 1, 1)[0]
    doc = _retry(http, f"/v1/batches/{bid}/retry", {"error_codes": [row.error_code]})
    assert srv.wait_for(doc["id"])["total"] == 1


def test_what_cannot_be_retried_is_refused_with_a_clear_error(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server()
    http = srv.http()
    ok = _openai_batch(srv, [_line("a")])
    srv.wait_for(ok)
    assert _retry(http, f"/v1/batches/{ok}/retry", status=400)["error"]["code"] == (
        "nothing_to_retry"
    )
    assert _retry(http, "/v1/batches/batch_nope/retry", status=404)["error"]["code"]
    bad = _retry(http, f"/v1/batches/{ok}/retry", {"error_codes": "upstream_error"}, 400)
    assert bad["error"]["param"] == "error_codes"
    bad = _retry(http, f"/v1/batches/{ok}/retry", {"codes": ["x"]}, 400)
    assert bad["error"]["param"] == "codes" and "error_codes" in bad["error"]["message"]
    bad = _retry(http, f"/v1/batches/{ok}/retry", {"budget_usd": -1}, 400)
    assert bad["error"]["param"] == "budget_usd"
    assert http.get(f"/v1/batches/{ok}/retry").status_code == 405

    sim.configure(latency_ms=300)  # a batch still running is a conflict, not a retry
    running = _openai_batch(srv, [_line(f"r{i}") for i in range(4)])
    err = _retry(http, f"/v1/batches/{running}/retry", status=409)
    assert err["error"]["code"] == "batch_not_ended" and running in err["error"]["message"]

    invalid = _openai_batch(srv, [b"{not json"])
    assert srv.wait_for(invalid)["status"] == "failed"
    err = _retry(http, f"/v1/batches/{invalid}/retry", status=400)
    assert "failed validation" in err["error"]["message"]

    gone = _openai_batch(srv, [_line("g", "fail-x")])
    done = srv.wait_for(gone)
    srv.openai().files.delete(done["input_file_id"])
    err = _retry(http, f"/v1/batches/{gone}/retry", status=400)
    assert err["error"]["code"] == "input_gone"


def test_a_cancelled_batch_retries_its_unsent_lines(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(config=single_upstream(sim.url, concurrency=2, timeout=5.0))
    sim.configure(latency_ms=100)
    lines = [_line(f"c{i}") for i in range(40)]
    bid = _openai_batch(srv, lines)
    wait_rows(srv, bid, succeeded=2)
    srv.openai().batches.cancel(bid)
    ended = srv.wait_for(bid)
    assert ended["status"] == "cancelled" and ended["canceled"] > 0
    sim.configure(latency_ms=0)
    doc = _retry(srv.http(), f"/v1/batches/{bid}/retry", {"error_codes": ["batch_cancelled"]})
    retried = srv.wait_for(doc["id"])
    assert retried["total"] == ended["canceled"] == 40 - ended["completed"]
    assert retried["completed"] == retried["total"]


def test_a_batch_cancelled_before_its_input_was_read_retries_every_line(
    make_server: Callable[..., ServerHandle], sim: SimHandle, tmp_path: Path
) -> None:
    url, data = f"sqlite:///{tmp_path / 'shared.sqlite'}", tmp_path / "shared-data"
    srv = make_server(url, worker=False, data_dir=data)  # nobody reads it before the cancel
    lines = [_line("a"), _line("b")]
    bid = _openai_batch(srv, lines)
    srv.openai().batches.cancel(bid)
    make_server(url, data_dir=data)  # a worker on the same store reads it, then ends it
    ended = srv.wait_for(bid, timeout=20)
    assert (ended["status"], ended["total"], ended["canceled"]) == ("cancelled", 2, 2)
    assert sim.stats()["requests"] == 0
    doc = _retry(srv.http(), f"/v1/batches/{bid}/retry")
    content = srv.openai().files.content(doc["input_file_id"]).content
    assert content == b"".join(x + b"\n" for x in lines)


def test_a_batch_cancelled_while_its_input_failed_validation_has_nothing_to_retry(
    make_server: Callable[..., ServerHandle], sim: SimHandle, tmp_path: Path
) -> None:
    url, data = f"sqlite:///{tmp_path / 'shared.sqlite'}", tmp_path / "shared-data"
    srv = make_server(url, worker=False, data_dir=data)
    bid = _openai_batch(srv, [_line("a"), b"{not json"])
    srv.openai().batches.cancel(bid)
    make_server(url, data_dir=data)
    ended = srv.wait_for(bid, timeout=20)
    assert ended["status"] == "cancelled" and ended["errors"]
    err = _retry(srv.http(), f"/v1/batches/{bid}/retry", status=400)
    assert err["error"]["code"] == "nothing_to_retry"


def test_gateway_retry_is_a_gateway_batch_of_the_failed_requests(
    srv: ServerHandle, sim: SimHandle
) -> None:
    http = srv.http()
    r = http.post("/v1/batches", json={
        "model": "default:sim-model",
        "requests": [gateway_req("a"), gateway_req("b", model="fail-x"), gateway_req("c")],
    })  # fmt: skip
    assert r.status_code == 200, r.text
    bid = r.json()["id"]
    srv.wait_for(bid)
    sim.configure(fail_model_prefix="")
    doc = _retry(http, f"/v1/batches/{bid}/retry")
    assert doc["provider"] == "default" and doc["model"] == "default:sim-model"
    assert doc["metadata"] == {"retry_of": bid}
    srv.wait_for(doc["id"])
    results = http.get(f"/v1/batches/{doc['id']}/results").json()["results"]
    assert [(x["custom_id"], x["error"]) for x in results] == [("b", None)]


def test_anthropic_retry_is_a_message_batch_of_the_errored_requests(
    srv: ServerHandle, sim: SimHandle
) -> None:
    http = srv.http()
    requests = [message_req("a"), message_req("b", model="fail-x"), message_req("c")]
    r = http.post("/v1/messages/batches", json={"requests": requests})
    assert r.status_code == 200, r.text
    bid = r.json()["id"]
    srv.wait_for(bid)
    assert r.json()["retry_of"] is None
    sim.configure(fail_model_prefix="")
    doc = _retry(http, f"/v1/messages/batches/{bid}/retry")
    assert doc["type"] == "message_batch" and doc["id"].startswith("msgbatch_")
    assert doc["retry_of"] == bid and doc["request_counts"]["processing"] == 1
    srv.wait_for(doc["id"])
    lines = http.get(f"/v1/messages/batches/{doc['id']}/results").text.splitlines()
    assert [(json.loads(x)["custom_id"], json.loads(x)["result"]["type"]) for x in lines] == [
        ("b", "succeeded")
    ]
    # A Message Batch is retried under its own prefix only.
    assert http.post(f"/v1/batches/{bid}/retry").status_code == 404
    err = _retry(http, f"/v1/messages/batches/{bid}/retry", {"error_codes": "x"}, 400)
    assert err["type"] == "error" and "error_codes" in err["error"]["message"]


def test_jobs_retry_makes_one_new_submission_of_the_failed_jobs(
    srv: ServerHandle, sim: SimHandle
) -> None:
    http = srv.http()
    jobs = [
        {"model": "sim-model", "prompt": "one", "title": "first"},
        {"model": "fail-x", "prompt": "two", "title": "second"},
        {"model": "fail-y", "prompt": "three"},
    ]
    r = http.post("/qai/v1/batch", json={"jobs": jobs})
    assert r.status_code == 200, r.text
    ok, bad1, bad2 = r.json()["job_ids"]
    srv.wait_for(r.json()["job_ids"][0].replace("job_", "jobs_").rsplit("_", 1)[0])

    err = _retry(http, "/qai/v1/batch/retry", {"job_ids": [bad1, ok]}, 400)
    assert err["error"].startswith("job_ids.1: ") and "completed" in err["error"]
    err = _retry(http, "/qai/v1/batch/retry", {"job_ids": [bad1, bad1]}, 400)
    assert err["error"].startswith("job_ids.1: ")
    assert _retry(http, "/qai/v1/batch/retry", {"job_ids": ["job_nope_1"]}, 404)["error"]
    assert _retry(http, "/qai/v1/batch/retry", {"job_ids": []}, 400)["error"].startswith("job_ids")

    sim.configure(fail_model_prefix="")
    doc = _retry(http, "/qai/v1/batch/retry", {"job_ids": [bad2, bad1]})
    assert doc["retry_of"] == [bad2, bad1] and doc["status"] == "pending"
    new2, new1 = doc["job_ids"]
    srv.wait_for(new1.replace("job_", "jobs_").rsplit("_", 1)[0])
    one, two = (http.get(f"/qai/v1/batch/jobs/{j}").json() for j in (new1, new2))
    assert (one["status"], one["model"], one["title"]) == ("completed", "fail-x", "second")
    assert (two["status"], two["model"], two["title"]) == ("completed", "fail-y", None)
    assert "two" in one["result"]


def test_a_batch_is_retried_once_and_again_once_its_retry_is_gone(
    srv: ServerHandle, sim: SimHandle
) -> None:
    bid = _openai_batch(srv, [_line("a"), _line("b", "fail-x")])
    srv.wait_for(bid)
    http = srv.http()
    first = _retry(http, f"/v1/batches/{bid}/retry")
    err = _retry(http, f"/v1/batches/{bid}/retry", status=409)
    assert err["error"]["code"] == "already_retried" and first["id"] in err["error"]["message"]
    srv.wait_for(first["id"])
    assert http.delete(f"/v1/batches/{first['id']}").status_code == 200
    second = _retry(http, f"/v1/batches/{bid}/retry")  # the mark's batch is gone: taken over
    assert second["id"] != first["id"] and second["metadata"] == {"retry_of": bid}
    # A refused retry leaves no mark: a retry of a gateway batch with nothing to send, then one
    # that sends, and the store holds nothing of the refused one.
    r = http.post("/v1/batches", json={
        "model": "default:sim-model", "requests": [gateway_req("g"), gateway_req("h", "fail-x")],
    })  # fmt: skip
    gid = r.json()["id"]
    srv.wait_for(gid)
    before = (_counts(srv), sorted(p.name for p in srv.blobs.root.iterdir()))
    assert _retry(http, f"/v1/batches/{gid}/retry", {"error_codes": ["nope"]}, 400)
    assert (_counts(srv), sorted(p.name for p in srv.blobs.root.iterdir())) == before
    assert _retry(http, f"/v1/batches/{gid}/retry")["metadata"] == {"retry_of": gid}


def test_a_retry_may_spend_what_the_originals_budget_left(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    priced = UpstreamConfig(
        "default", sim.url, concurrency=4, timeout=5.0, prices={"*": Price(1.0, 2.0)}
    )
    srv = make_server(config=Config(upstreams=(priced,), default_upstream="default"))
    http = srv.http()
    bid = _openai_batch(srv, [_line("a"), _line("b", "fail-x")], extra_body={"budget_usd": 1})
    done = srv.wait_for(bid)
    assert done["cost_ticks"] > 0 and done["budget_ticks"] == 10**9
    retry = _retry(http, f"/v1/batches/{bid}/retry")
    assert retry["budget"]["ticks"] == 10**9 - done["cost_ticks"]

    other = _openai_batch(srv, [_line("c", "fail-y")], extra_body={"budget_usd": "0.001"})
    spent = srv.wait_for(other)
    with srv.store.write() as conn:  # as if its one request had cost the whole budget
        conn.exec_driver_sql(
            srv.store._q("UPDATE batches SET cost_ticks = budget_ticks WHERE id = ?"), (other,)
        )
    err = _retry(http, f"/v1/batches/{other}/retry", status=400)
    assert err["error"]["code"] == "budget_spent" and err["error"]["param"] == "budget_usd"
    own = _retry(http, f"/v1/batches/{other}/retry", {"budget_usd": 2})
    assert own["budget"]["ticks"] == 2 * 10**9 and spent["status"] == "completed"
