"""The paged read of finished rows (``GET …/{id}/results?after=&limit=``, an extension) in both
dialects, and ``DELETE /v1/batches/{id}``: live servers, raw HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from batchgate.sim import SimHandle
from tests.helpers.servers import ServerHandle

CHAT = "/v1/chat/completions"


def _line(i: int, model: str = "sim-model") -> dict[str, Any]:
    return {
        "custom_id": f"r{i}", "method": "POST", "url": CHAT,
        "body": {"model": model, "messages": [{"role": "user", "content": f"hi {i}"}]},
    }  # fmt: skip


def _create(http: httpx.Client, lines: list[dict[str, Any]]) -> str:
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    f = http.post("/v1/files", files={"file": ("in.jsonl", data)}, data={"purpose": "batch"})
    body = {"input_file_id": f.json()["id"], "endpoint": CHAT, "completion_window": "24h"}
    return str(http.post("/v1/batches", json=body).json()["id"])


def _pages(http: httpx.Client, path: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Every page from after=0; the result lines and how many pages it took."""
    lines: list[dict[str, Any]] = []
    after, pages = 0, 0
    while True:
        r = http.get(path, params={"after": after, "limit": limit})
        assert r.status_code == 200, r.text
        pages += 1
        lines += [json.loads(x) for x in r.text.splitlines()]
        after = int(r.headers["x-batchgate-next-after"])
        if r.headers["x-batchgate-has-more"] == "false":
            return lines, pages


def _file_lines(http: httpx.Client, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(x) for x in http.get(f"/v1/files/{file_id}/content").text.splitlines()]


def test_openai_pages_hold_every_line_once_in_input_order(server: ServerHandle) -> None:
    http = server.http()
    lines = [_line(i, "fail-x" if i % 3 == 0 else "sim-model") for i in range(7)]
    bid = _create(http, lines)
    server.wait_for(bid)
    got, pages = _pages(http, f"/v1/batches/{bid}/results", limit=3)
    assert [x["custom_id"] for x in got] == [f"r{i}" for i in range(7)]
    assert pages == 3
    batch = http.get(f"/v1/batches/{bid}").json()
    files = _file_lines(http, batch["output_file_id"]) + _file_lines(http, batch["error_file_id"])
    assert sorted(got, key=lambda x: x["id"]) == sorted(files, key=lambda x: x["id"])
    statuses = [x["response"]["status_code"] for x in got]
    assert statuses == [400 if i % 3 == 0 else 200 for i in range(7)]


def test_a_page_past_the_end_is_empty_and_says_so(server: ServerHandle) -> None:
    http = server.http()
    bid = _create(http, [_line(i) for i in range(2)])
    server.wait_for(bid)
    r = http.get(f"/v1/batches/{bid}/results", params={"after": 2})
    assert r.status_code == 200 and r.content == b""
    assert r.headers["x-batchgate-next-after"] == "2"
    assert r.headers["x-batchgate-has-more"] == "false"


def test_partial_results_while_the_batch_runs(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    sim.configure(rate_slow=0.5, slow_ms=3000, seed=7)
    srv = make_server()
    http = srv.http()
    bid = _create(http, [_line(i) for i in range(8)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        batch = http.get(f"/v1/batches/{bid}").json()
        if batch["request_counts"]["completed"] >= 1:
            break
        time.sleep(0.02)
    partial, _ = _pages(http, f"/v1/batches/{bid}/results", limit=2)
    assert http.get(f"/v1/batches/{bid}").json()["status"] == "in_progress", "ran too fast"
    ids = [x["custom_id"] for x in partial]
    assert 1 <= len(ids) < 8
    assert ids == sorted(set(ids), key=lambda c: int(c[1:]))  # input order, each once
    srv.wait_for(bid)
    everything, _ = _pages(http, f"/v1/batches/{bid}/results", limit=1000)
    assert [x["custom_id"] for x in everything] == [f"r{i}" for i in range(8)]


def test_anthropic_pages_and_the_plain_results_file_agree(server: ServerHandle) -> None:
    http = server.http()
    reqs = [
        {"custom_id": f"m{i}", "params": {"model": "sim-model", "max_tokens": 16,
                                           "messages": [{"role": "user", "content": "hi"}]}}
        for i in range(5)
    ]  # fmt: skip
    bid = http.post("/v1/messages/batches", json={"requests": reqs}).json()["id"]
    server.wait_for(bid)
    path = f"/v1/messages/batches/{bid}/results"
    got, pages = _pages(http, path, limit=2)
    assert pages == 3
    whole = [json.loads(x) for x in http.get(path).text.splitlines()]
    assert got == whole
    assert [x["result"]["type"] for x in got] == ["succeeded"] * 5


@pytest.mark.parametrize(
    ("query", "param"), [({"limit": 0}, "limit"), ({"limit": 10_001}, "limit"),
                         ({"after": -1}, "after"), ({"after": "x"}, "after")],
)  # fmt: skip
def test_bad_page_parameters_are_located_400s(
    server: ServerHandle, query: dict[str, Any], param: str
) -> None:
    http = server.http()
    bid = _create(http, [_line(0)])
    r = http.get(f"/v1/batches/{bid}/results", params=query)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == param


def test_results_of_an_unknown_batch_are_404_in_each_envelope(server: ServerHandle) -> None:
    http = server.http()
    r = http.get("/v1/batches/batch_nope/results", params={"after": 0})
    assert r.status_code == 404 and "batch_nope" in r.json()["error"]["message"]
    r = http.get("/v1/messages/batches/msgbatch_nope/results", params={"after": 0})
    assert r.status_code == 404 and r.json()["type"] == "error"


def test_delete_an_openai_batch_once_it_ended(
    make_server: Callable[..., ServerHandle],
) -> None:
    api_only = make_server(worker=False)
    http = api_only.http()
    bid = _create(http, [_line(0)])
    r = http.delete(f"/v1/batches/{bid}")
    assert r.status_code == 400 and "still being processed" in r.json()["error"]["message"]
    srv = make_server(api_only.store.url, data_dir=api_only.blobs.root.parent)
    srv.wait_for(bid)
    batch = http.get(f"/v1/batches/{bid}").json()
    r = http.delete(f"/v1/batches/{bid}")
    assert r.json() == {"id": bid, "object": "batch", "deleted": True}
    assert http.get(f"/v1/batches/{bid}").status_code == 404
    assert http.get(f"/v1/files/{batch['output_file_id']}").status_code == 404
    assert http.get(f"/v1/files/{batch['input_file_id']}").status_code == 200
    assert http.delete(f"/v1/batches/{bid}").status_code == 404
