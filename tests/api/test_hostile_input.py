"""Hostile input never reaches a 5xx, never makes a batch that does not end, and never makes a
step that is tried forever (invariant 8), on SQLite and on PostgreSQL.

The cases are those of a drill of hostile requests against each backend: JSON nested past what
can be written back out, integers too large for a column, NUL characters where PostgreSQL's text
cannot hold them, and an input blob that cannot be read back (the last line of defence: a
validation that fails the same way twice ends the batch with the reason).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batchgate.config import Config, Price, UpstreamConfig
from batchgate.engine.ingest import requests_blob
from batchgate.sim import SimHandle
from tests.helpers.servers import ServerHandle

CHAT = "/v1/chat/completions"
DEEP = 300  # past the encoder's 254 levels, under the parser's 1,024


def _nested(depth: int) -> Any:
    doc: Any = "x"
    for _ in range(depth - 1):
        doc = [doc]
    return doc


def _line(cid: str = "a", **body: Any) -> bytes:
    doc = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], **body}
    return json.dumps({"custom_id": cid, "method": "POST", "url": CHAT, "body": doc}).encode()


def _msg(cid: str = "m", **params: Any) -> dict[str, Any]:
    doc = {"model": "sim-model", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    return {"custom_id": cid, "params": {**doc, **params}}


@pytest.fixture
def srv(db_url: str, make_server: Callable[..., ServerHandle], sim: SimHandle) -> ServerHandle:
    """Prices and a TPM budget on: every row gets a token estimate and a reservation."""
    up = UpstreamConfig(
        "default", sim.url, concurrency=8, tpm=10**12, timeout=5.0,
        prices={"*": Price(1.0, 2.0)},
    )  # fmt: skip
    return make_server(db_url, config=Config(upstreams=(up,), default_upstream="default"))


def _file_batch(srv: ServerHandle, lines: list[bytes]) -> dict[str, Any]:
    client = srv.openai()
    fid = client.files.create(file=("in.jsonl", b"\n".join(lines) + b"\n"), purpose="batch").id
    bid = client.batches.create(input_file_id=fid, endpoint=CHAT, completion_window="24h").id
    return srv.wait_for(bid, timeout=30)


def _errors(done: dict[str, Any]) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(done["errors"])["data"]
    return data


def test_a_line_nested_too_deep_fails_the_file_with_its_line(srv: ServerHandle) -> None:
    done = _file_batch(srv, [_line("ok"), _line("deep", metadata=_nested(DEEP))])
    assert done["status"] == "failed"
    (error,) = _errors(done)
    assert error["line"] == 2 and "nested more than 128 levels" in error["message"]
    # 128 levels are fine: what the encoder can write back out is accepted
    assert _file_batch(srv, [_line("ok", metadata=_nested(120))])["status"] == "completed"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/batches", {"model": "default:sim-model",
                         "requests": [{"custom_id": "g", "body": {"x": _nested(DEEP)}}]}),
        ("/v1/messages/batches", {"requests": [_msg(metadata=_nested(DEEP))]}),
        ("/qai/v1/batch", {"jobs": [{"model": "sim-model", "prompt": "p", "x": _nested(DEEP)}]}),
        ("/qai/v1/batch/retry", {"job_ids": _nested(DEEP)}),
    ],
)  # fmt: skip
def test_a_body_nested_too_deep_is_a_400_in_every_dialect(
    srv: ServerHandle, path: str, body: Any
) -> None:
    r = srv.http().post(path, content=json.dumps(body))
    assert r.status_code == 400, r.text
    assert "nested more than 128 levels" in r.text


def test_huge_integers_end_their_batch_in_every_dialect(srv: ServerHandle) -> None:
    """A max_tokens of 2^63 is the upstream's to refuse; the estimate that feeds budgets and
    the TPM limit is capped, so the row is stored and sent, and the batch ends."""
    done = _file_batch(srv, [_line("big", max_tokens=2**63 - 1), _line("ok")])
    assert done["status"] == "completed" and done["total"] == 2
    http = srv.http()
    r = http.post("/v1/messages/batches", json={"requests": [_msg(max_tokens=2**63 - 1)]})
    assert r.status_code == 200, r.text
    assert srv.wait_for(r.json()["id"], timeout=30)["status"] == "completed"
    r = http.post("/v1/batches", json={
        "model": "default:sim-model",
        "requests": [{"custom_id": "g", "body": {"messages": [{"role": "user", "content": "x"}],
                                                 "max_tokens": 2**31}}],
    })  # fmt: skip
    assert r.status_code == 200, r.text
    assert srv.wait_for(r.json()["id"], timeout=30)["status"] == "completed"
    r = http.post("/qai/v1/batch", json={"jobs": [
        {"model": "sim-model", "prompt": "p", "max_tokens": 2**63 - 1},
    ]})  # fmt: skip
    assert r.status_code == 200, r.text


def test_nul_characters_are_located_4xx_answers_never_a_5xx(srv: ServerHandle) -> None:
    http = srv.http()
    done = _file_batch(srv, [_line("a\u0000b"), _line("ok", model="sim\u0000model")])
    assert done["status"] == "failed"
    assert [(e["line"], e["param"]) for e in _errors(done)] == [
        (1, "custom_id"), (2, "body.model"),
    ]  # fmt: skip
    for path in (
        "/v1/batches/batch_%00", "/v1/files/file-%00", "/v1/files/file-%00/content",
        "/v1/messages/batches/msgbatch_%00", "/qai/v1/batch/jobs/job_a%00_1",
        "/v1/batches?after=batch_%00", "/v1/files?after=%00", "/v1/messages/batches?after_id=%00",
        "/qai/v1/batch/jobs?after=job_%00_1",
    ):  # fmt: skip
        r = http.get(path)
        assert r.status_code == 400, (path, r.text)
        assert "NUL" in r.text
    r = http.post("/v1/batches", json={
        "input_file_id": "file-\u0000", "endpoint": CHAT, "completion_window": "24h",
    })  # fmt: skip
    assert r.status_code == 400 and r.json()["error"]["param"] == "input_file_id"
    multipart = (  # by hand: httpx would escape the NUL in the filename as %00
        b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00.jsonl"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + _line() + b"\r\n--b--\r\n"
    )
    headers = {"content-type": "multipart/form-data; boundary=b"}
    r = http.post("/v1/files", content=multipart, headers=headers)
    assert r.status_code == 400 and "NUL" in r.text, r.text
    r = http.post("/v1/batches", json={
        "model": "default:sim-model", "requests": [{"custom_id": "g\u0000", "body": {
            "messages": [{"role": "user", "content": "x"}]}}],
    })  # fmt: skip
    assert r.status_code == 400 and r.json()["error"]["param"] == "requests.0.custom_id"
    r = http.post("/v1/batches", json={"model": "default:sim\u0000", "requests": []})
    assert r.status_code == 400
    r = http.post("/v1/messages/batches", json={"requests": [_msg("m\u0000")]})
    assert r.status_code == 400
    r = http.post("/qai/v1/batch", json={"jobs": [{"model": "m\u0000", "prompt": "p"}]})
    assert r.status_code == 400 and r.json()["error"].startswith("jobs.0.model")
    r = http.post("/qai/v1/batch/retry", json={"job_ids": ["job_a\u0000b_1"]})
    assert r.status_code == 404
    # A Message Batch request whose model holds a NUL fails alone, as an errored result.
    r = http.post(
        "/v1/messages/batches", json={"requests": [_msg("ok"), _msg("bad", model="a\u0000")]}
    )
    assert r.status_code == 200, r.text
    ended = srv.wait_for(r.json()["id"], timeout=30)
    assert (ended["completed"], ended["failed"]) == (1, 1)


def test_an_input_that_fails_validation_the_same_way_twice_ends_its_batch(
    db_url: str, make_server: Callable[..., ServerHandle], tmp_path: Path, sim: SimHandle
) -> None:
    """The last line of defence: an input that cannot be read back (a Message Batch's stored
    requests, damaged on disk before a worker read them) fails its batch with the reason at
    the second try, instead of being tried every lease TTL forever; a cancelled one ends
    cancelled (cancel always ends a batch)."""
    data = tmp_path / "shared"
    api = make_server(db_url, worker=False, data_dir=data)
    http = api.http()
    bids = [http.post("/v1/messages/batches", json={"requests": [_msg()]}).json()["id"]
            for _ in range(2)]  # fmt: skip
    assert http.post(f"/v1/messages/batches/{bids[1]}/cancel").status_code == 200
    for bid in bids:
        api.blobs.path(requests_blob(bid)).write_bytes(b'{"custom_id": "m", "params": \n')
    make_server(db_url, data_dir=data)  # a worker on the same store and blobs
    failed, cancelled = (api.wait_for(bid, timeout=30) for bid in bids)
    assert (failed["status"], cancelled["status"]) == ("failed", "cancelled")
    (error,) = json.loads(failed["errors"])["data"]
    assert error["code"] == "validation_failed" and "failed the same way twice" in error["message"]
    assert "JSONDecodeError" in error["message"]
    r = http.get(f"/v1/messages/batches/{bids[0]}")
    assert r.status_code == 200 and r.json()["processing_status"] == "ended"
