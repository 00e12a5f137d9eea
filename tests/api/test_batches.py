"""The Batch API (wire spec §2) through the official openai SDK against a live server."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types import Batch

from batchgate.sim import SimHandle
from tests.helpers.servers import ServerHandle, run_server

CHAT = "/v1/chat/completions"
BATCH_KEYS = {
    "id", "object", "endpoint", "model", "errors", "input_file_id", "completion_window",
    "status", "output_file_id", "error_file_id", "created_at", "expires_at", "in_progress_at",
    "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at",
    "request_counts", "usage", "metadata",
    "cost",  # batchgate's extension field: {"ticks", "usd", "priced"}
    "budget",  # batchgate's extension field: null, or {"ticks", "usd", "reached"}
    "upstreams",  # batchgate's extension field: [{"name", "state", "since", "last_error"}]
}  # fmt: skip
STAMPS = (
    "created_at", "expires_at", "in_progress_at", "finalizing_at", "completed_at", "failed_at",
    "expired_at", "cancelling_at", "cancelled_at",
)  # fmt: skip


def _chat_line(cid: str, model: str = "sim-model", text: str | None = None) -> dict[str, Any]:
    return {
        "custom_id": cid, "method": "POST", "url": CHAT,
        "body": {"model": model, "messages": [{"role": "user", "content": text or f"hello {cid}"}]},
    }  # fmt: skip


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


def _upload(client: openai.OpenAI, lines: list[dict[str, Any]]) -> str:
    return client.files.create(file=("in.jsonl", _jsonl(lines)), purpose="batch").id


def _run(srv: ServerHandle, lines: list[dict[str, Any]], endpoint: str = CHAT, **kw: Any) -> Batch:
    client = srv.openai()
    batch = client.batches.create(
        input_file_id=_upload(client, lines), endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h", **kw,
    )  # fmt: skip
    srv.wait_for(batch.id)
    return client.batches.retrieve(batch.id)


def _read(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines()]


def _n_batches(client: openai.OpenAI) -> int:
    return len(list(client.batches.list(limit=100)))


def _assert_counts_match_rows(srv: ServerHandle, batch: Batch) -> None:
    rows = srv.store.count_rows(batch.id)
    rc = batch.request_counts
    assert rc is not None
    assert rc.total == sum(rows.values())
    assert rc.completed == rows.get("succeeded", 0)
    assert rc.failed == rc.total - rc.completed


@pytest.fixture(scope="module")
def shared(
    sim_session: SimHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerHandle]:
    """One live server for the tests here that need no fresh state (each makes its own files
    and batches); tests that count or list everything use their own server."""
    d = tmp_path_factory.mktemp("shared")
    with run_server(f"sqlite:///{d / 'db.sqlite'}", d / "data", upstream_url=sim_session.url) as s:
        yield s


# -- create / lifecycle ---------------------------------------------------------------------------


def test_create_returns_validating_then_completes(
    db_url: str, sim: SimHandle, tmp_path: Path
) -> None:
    """An API-only node and a worker node on one database and blob directory (the scale-out
    shape): with no worker behind the API the created batch is certainly still validating."""
    with contextlib.ExitStack() as stack:
        api = stack.enter_context(
            run_server(db_url, tmp_path / "data", upstream_url=sim.url, worker=False)
        )
        client = api.openai()
        fid = _upload(client, [_chat_line(f"c{i}") for i in range(5)])
        before = int(time.time())
        batch = client.batches.create(
            input_file_id=fid, endpoint=CHAT, completion_window="24h", metadata={"job": "nightly"}
        )
        assert batch.status == "validating"
        assert batch.id.startswith("batch_")
        assert batch.object == "batch"
        assert batch.endpoint == CHAT
        assert batch.input_file_id == fid
        assert batch.completion_window == "24h"
        assert before <= batch.created_at <= int(time.time())
        assert batch.expires_at == batch.created_at + 86400
        assert batch.metadata == {"job": "nightly"}
        assert batch.request_counts is not None
        assert batch.request_counts.model_dump() == {"total": 0, "completed": 0, "failed": 0}

        raw = api.http().get(f"/v1/batches/{batch.id}").json()
        assert set(raw) == BATCH_KEYS
        assert raw["status"] == "validating"
        for key in STAMPS[2:]:
            assert raw[key] is None, key
        for key in ("output_file_id", "error_file_id", "errors", "model"):
            assert raw[key] is None, key
        for key in ("created_at", "expires_at"):
            assert type(raw[key]) is int, key
        Batch.model_validate(raw, strict=True)

        stack.enter_context(run_server(db_url, tmp_path / "data", upstream_url=sim.url))
        api.wait_for(batch.id)
        done = client.batches.retrieve(batch.id)
        assert done.status == "completed"
        assert done.metadata == {"job": "nightly"}
        assert done.model == "sim-model"
        assert done.request_counts is not None
        assert done.request_counts.model_dump() == {"total": 5, "completed": 5, "failed": 0}
        assert done.in_progress_at is not None
        assert done.finalizing_at is not None
        assert done.completed_at is not None
        assert done.created_at <= done.in_progress_at <= done.finalizing_at <= done.completed_at
        assert done.failed_at is None and done.expired_at is None
        assert done.cancelling_at is None and done.cancelled_at is None
        assert done.error_file_id is None and done.errors is None
        assert done.output_file_id is not None
        out_file = client.files.retrieve(done.output_file_id)
        assert out_file.purpose == "batch_output"
        assert out_file.status == "processed"
        assert out_file.bytes == len(client.files.content(done.output_file_id).content)
        _assert_counts_match_rows(api, done)


def test_raw_batch_json_has_every_key_and_validates(shared: ServerHandle) -> None:
    client = shared.openai()
    http = shared.http()
    fid = _upload(client, [_chat_line(f"k{i}") for i in range(3)])
    created = http.post(
        "/v1/batches",
        json={"input_file_id": fid, "endpoint": CHAT, "completion_window": "24h"},
    )
    assert created.status_code == 200
    assert set(created.json()) == BATCH_KEYS
    Batch.model_validate(created.json(), strict=True)
    bid = created.json()["id"]

    shared.wait_for(bid)
    raw = http.get(f"/v1/batches/{bid}")
    assert raw.status_code == 200
    done = raw.json()
    assert set(done) == BATCH_KEYS
    assert done["status"] == "completed"
    for key in ("created_at", "expires_at", "in_progress_at", "finalizing_at", "completed_at"):
        assert type(done[key]) is int, key
    for key in ("failed_at", "expired_at", "cancelling_at", "cancelled_at", "error_file_id"):
        assert done[key] is None, key
    for key in ("errors", "metadata"):
        assert done[key] is None, key
    assert isinstance(done["output_file_id"], str)
    assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    assert set(done["usage"]) == {
        "input_tokens", "input_tokens_details", "output_tokens", "output_tokens_details",
        "total_tokens",
    }  # fmt: skip
    assert done["usage"]["total_tokens"] == (
        done["usage"]["input_tokens"] + done["usage"]["output_tokens"]
    )
    assert done["usage"]["input_tokens"] > 0 and done["usage"]["output_tokens"] > 0
    b = Batch.model_validate(done, strict=True)
    assert b.status == "completed"
    assert b.request_counts is not None and b.request_counts.completed == 3


def test_metadata_round_trips_at_the_limits(shared: ServerHandle) -> None:
    client = shared.openai()
    fid = _upload(client, [_chat_line("m0")])
    meta = {f"k{i:02d}": f"v{i}" for i in range(15)}
    meta["x" * 64] = "y" * 512
    batch = client.batches.create(
        input_file_id=fid, endpoint=CHAT, completion_window="24h", metadata=meta
    )
    assert batch.metadata == meta
    assert client.batches.retrieve(batch.id).metadata == meta
    assert client.batches.list(limit=1).data[0].metadata == meta  # newest first


BAD_METADATA: dict[str, Any] = {
    "17-pairs": {f"k{i}": "v" for i in range(17)},
    "65-char-key": {"k" * 65: "v"},
    "513-char-value": {"k": "v" * 513},
    "int-value": {"k": 1},
    "null-value": {"k": None},
    "not-an-object": ["k", "v"],
}


def test_metadata_limits_are_400(shared: ServerHandle) -> None:
    client = shared.openai()
    stored = _n_batches(client)
    fid = _upload(client, [_chat_line("m0")])
    for case, metadata in BAD_METADATA.items():
        with pytest.raises(openai.BadRequestError) as ei:
            client.batches.create(
                input_file_id=fid, endpoint=CHAT, completion_window="24h", metadata=metadata
            )
        assert ei.value.status_code == 400, case
        assert ei.value.param == "metadata", case
        assert ei.value.type == "invalid_request_error", case
    assert _n_batches(client) == stored


def test_missing_required_parameter(shared: ServerHandle) -> None:
    client = shared.openai()
    stored = _n_batches(client)
    fid = _upload(client, [_chat_line("a")])
    for missing in ("input_file_id", "endpoint", "completion_window"):
        body = {"input_file_id": fid, "endpoint": CHAT, "completion_window": "24h"}
        del body[missing]
        r = shared.http().post("/v1/batches", json=body)
        assert r.status_code == 400, missing
        assert r.json() == {
            "error": {
                "message": f"Missing required parameter: '{missing}'.",
                "type": "invalid_request_error",
                "param": missing,
                "code": "missing_required_parameter",
            }
        }
        # the SDK surfaces the same error (here with the field sent as null)
        with pytest.raises(openai.BadRequestError) as ei:
            client.post("/batches", body={**body, missing: None}, cast_to=Batch)
        assert (ei.value.code, ei.value.param) == ("missing_required_parameter", missing)
    assert _n_batches(client) == stored


def test_unsupported_endpoint_is_400(shared: ServerHandle) -> None:
    client = shared.openai()
    stored = _n_batches(client)
    fid = _upload(client, [_chat_line("a")])
    for endpoint in ("/v1/moderations", "/v1/images/generations", "/v1/chat", "v1/embeddings"):
        with pytest.raises(openai.BadRequestError) as ei:
            client.batches.create(
                input_file_id=fid,
                endpoint=endpoint,
                completion_window="24h",  # type: ignore[arg-type]
            )
        assert ei.value.param == "endpoint", endpoint
    assert _n_batches(client) == stored


def test_completion_window_accepted(shared: ServerHandle) -> None:
    client = shared.openai()
    fid = _upload(client, [_chat_line("a")])
    for window, hours in (("24h", 24), ("1h", 1), ("72h", 72)):
        b = client.batches.create(
            input_file_id=fid,
            endpoint=CHAT,
            completion_window=window,  # type: ignore[arg-type]
        )
        assert b.completion_window == window
        assert b.expires_at is not None
        assert b.expires_at - b.created_at == hours * 3600, window


def test_completion_window_rejected(shared: ServerHandle) -> None:
    client = shared.openai()
    stored = _n_batches(client)
    fid = _upload(client, [_chat_line("a")])
    for window in ("25m", "0h", "24", "", "169h", "1d", 24):
        with pytest.raises(openai.BadRequestError) as ei:
            client.batches.create(
                input_file_id=fid,
                endpoint=CHAT,
                completion_window=window,  # type: ignore[arg-type]
            )
        assert ei.value.param == "completion_window", window
    assert _n_batches(client) == stored


def test_input_file_with_other_purpose_is_400(shared: ServerHandle) -> None:
    client = shared.openai()
    fid = client.files.create(file=("in.jsonl", _jsonl([_chat_line("a")])), purpose="user_data").id
    with pytest.raises(openai.BadRequestError) as ei:
        client.batches.create(input_file_id=fid, endpoint=CHAT, completion_window="24h")
    assert ei.value.param == "input_file_id"
    assert fid in ei.value.message


def test_unknown_input_file_is_400(shared: ServerHandle) -> None:
    client = shared.openai()
    stored = _n_batches(client)
    with pytest.raises(openai.BadRequestError) as ei:
        client.batches.create(input_file_id="file-nope", endpoint=CHAT, completion_window="24h")
    assert ei.value.param == "input_file_id"
    assert _n_batches(client) == stored


def test_output_file_is_batch_output_and_output_expiry(shared: ServerHandle) -> None:
    client = shared.openai()
    b = _run(
        shared, [_chat_line("o1")],
        output_expires_after={"anchor": "created_at", "seconds": 7200},
    )  # fmt: skip
    assert b.output_file_id is not None
    f = client.files.retrieve(b.output_file_id)
    assert f.purpose == "batch_output"
    assert f.expires_at == f.created_at + 7200
    assert f.filename.endswith(".jsonl")


# -- listing --------------------------------------------------------------------------------------


def test_list_pages_newest_first(db_url: str, make_server: Callable[..., ServerHandle]) -> None:
    server = make_server(db_url)
    client = server.openai()
    fid = _upload(client, [_chat_line("a")])
    ids = []
    for _ in range(5):
        ids.append(client.batches.create(input_file_id=fid, endpoint=CHAT,
                                         completion_window="24h").id)  # fmt: skip
        time.sleep(0.003)
    newest_first = ids[::-1]

    assert [b.id for b in client.batches.list().data] == newest_first
    seen = [b.id for b in client.batches.list(limit=2)]
    assert seen == newest_first  # auto-pagination: every id exactly once, in order

    p1 = client.batches.list(limit=2)
    assert [b.id for b in p1.data] == newest_first[:2]
    assert p1.has_more is True
    p2 = client.batches.list(limit=2, after=p1.data[-1].id)
    assert [b.id for b in p2.data] == newest_first[2:4]
    assert p2.has_more is True
    p3 = client.batches.list(limit=2, after=p2.data[-1].id)
    assert [b.id for b in p3.data] == newest_first[4:]
    assert p3.has_more is False

    raw = server.http().get("/v1/batches", params={"limit": 3}).json()
    assert raw["object"] == "list"
    assert raw["first_id"] == newest_first[0]
    assert raw["last_id"] == newest_first[2]
    assert raw["has_more"] is True
    for item in raw["data"]:
        assert set(item) == BATCH_KEYS
        Batch.model_validate(item, strict=True)

    empty = client.batches.list(after=ids[0])
    assert empty.data == [] and empty.has_more is False


def test_list_bad_limit_is_400(shared: ServerHandle) -> None:
    http = shared.http()
    for limit in ("0", "101", "abc", "-1", "1.5"):
        r = http.get("/v1/batches", params={"limit": limit})
        assert r.status_code == 400, limit
        assert r.json()["error"]["param"] == "limit"
    assert http.get("/v1/batches", params={"limit": "100"}).status_code == 200


def test_retrieve_unknown_is_404(shared: ServerHandle) -> None:
    client = shared.openai()
    with pytest.raises(openai.NotFoundError) as ei:
        client.batches.retrieve("batch_unknown")
    assert ei.value.status_code == 404
    assert ei.value.type == "not_found_error"
    with pytest.raises(openai.NotFoundError):
        client.batches.cancel("batch_unknown")


# -- results --------------------------------------------------------------------------------------


def test_output_lines_shape_order_and_usage(shared: ServerHandle) -> None:
    client = shared.openai()
    n = 40
    lines = [
        _chat_line(f"req-{i:03d}", text=f"question number {i} " * (i % 5 + 1)) for i in range(n)
    ]
    b = _run(shared, lines)
    assert b.status == "completed"
    out = _read(client, b.output_file_id)
    assert [o["custom_id"] for o in out] == [f"req-{i:03d}" for i in range(n)]
    ids = set()
    for o in out:
        assert set(o) == {"id", "custom_id", "response", "error"}
        assert o["id"].startswith("batch_req_")
        ids.add(o["id"])
        assert o["error"] is None
        resp = o["response"]
        assert set(resp) == {"status_code", "request_id", "body"}
        assert resp["status_code"] == 200
        assert isinstance(resp["request_id"], str) and resp["request_id"]
        body = resp["body"]
        assert isinstance(body, dict)
        assert body["object"] == "chat.completion"
        assert body["model"] == "sim-model"
        assert body["choices"][0]["message"]["role"] == "assistant"
        openai.types.chat.ChatCompletion.model_validate(body)
    assert len(ids) == n  # per-line ids are distinct
    assert "question number 7" in out[7]["response"]["body"]["choices"][0]["message"]["content"]

    usage = b.usage
    assert usage is not None
    inp = sum(o["response"]["body"]["usage"]["prompt_tokens"] for o in out)
    outp = sum(o["response"]["body"]["usage"]["completion_tokens"] for o in out)
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (inp, outp, inp + outp)
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0
    _assert_counts_match_rows(shared, b)


def test_mixed_models_failing_line_goes_to_error_file(
    db_url: str, make_server: Callable[..., ServerHandle]
) -> None:
    server = make_server(db_url)
    client = server.openai()
    n = 12
    bad = {3, 7, 11}
    lines = [_chat_line(f"m{i}", model="fail-model" if i in bad else "sim-model") for i in range(n)]
    b = _run(server, lines)
    assert b.status == "completed"  # per-line failures never fail the batch
    assert b.failed_at is None and b.errors is None
    assert b.request_counts is not None
    assert b.request_counts.model_dump() == {"total": n, "completed": n - 3, "failed": 3}
    assert b.model is None  # more than one model in the file
    out = _read(client, b.output_file_id)
    err = _read(client, b.error_file_id)
    assert [o["custom_id"] for o in out] == [f"m{i}" for i in range(n) if i not in bad]
    assert [e["custom_id"] for e in err] == [f"m{i}" for i in sorted(bad)]
    for e in err:
        assert set(e) == {"id", "custom_id", "response", "error"}
        assert e["error"] is None
        assert e["response"]["status_code"] == 400
        assert isinstance(e["response"]["request_id"], str)
        body = e["response"]["body"]
        assert set(body) == {"error"}
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["code"] == "model_not_found"
        assert body["error"]["param"] == "model"
    all_ids = [x["custom_id"] for x in out + err]
    assert sorted(all_ids) == sorted(f"m{i}" for i in range(n))
    assert len(all_ids) == len(set(all_ids))
    # a non-retryable 400 is sent once
    assert server.store.count_rows(b.id) == {"succeeded": n - 3, "failed": 3}
    _assert_counts_match_rows(server, b)


def test_all_lines_failing_still_completes(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    shared = make_server()  # its own server: the upstream's request count is asserted
    client = shared.openai()
    n = 6
    b = _run(shared, [_chat_line(f"f{i}", model="fail-everything") for i in range(n)])
    assert b.status == "completed"
    assert b.completed_at is not None
    assert b.output_file_id is None
    assert b.error_file_id is not None
    assert b.request_counts is not None
    assert b.request_counts.model_dump() == {"total": n, "completed": 0, "failed": n}
    assert b.usage is not None and b.usage.total_tokens == 0
    err = _read(client, b.error_file_id)
    assert [e["custom_id"] for e in err] == [f"f{i}" for i in range(n)]
    assert all(e["response"]["status_code"] == 400 for e in err)
    assert sim.stats()["requests"] == n  # not retried
    _assert_counts_match_rows(shared, b)


def test_embeddings_batch(shared: ServerHandle) -> None:
    client = shared.openai()
    lines = [
        {"custom_id": f"e{i}", "method": "POST", "url": "/v1/embeddings",
         "body": {"model": "sim-embed", "input": f"text number {i}", "dimensions": 4}}
        for i in range(5)
    ]  # fmt: skip
    b = _run(shared, lines, endpoint="/v1/embeddings")
    assert b.status == "completed"
    assert b.endpoint == "/v1/embeddings"
    assert b.model == "sim-embed"
    out = _read(client, b.output_file_id)
    assert [o["custom_id"] for o in out] == [f"e{i}" for i in range(5)]
    for o in out:
        body = o["response"]["body"]
        emb = openai.types.CreateEmbeddingResponse.model_validate(body)
        assert len(emb.data) == 1 and len(emb.data[0].embedding) == 4
    assert b.usage is not None
    assert b.usage.input_tokens == sum(o["response"]["body"]["usage"]["prompt_tokens"] for o in out)
    assert b.usage.output_tokens == 0


def test_completions_batch(shared: ServerHandle) -> None:
    client = shared.openai()
    lines = [
        {"custom_id": f"p{i}", "method": "POST", "url": "/v1/completions",
         "body": {"model": "sim-model", "prompt": f"Once upon a time {i}", "max_tokens": 8}}
        for i in range(4)
    ]  # fmt: skip
    b = _run(shared, lines, endpoint="/v1/completions")
    assert b.status == "completed"
    out = _read(client, b.output_file_id)
    assert [o["custom_id"] for o in out] == [f"p{i}" for i in range(4)]
    for o in out:
        c = openai.types.Completion.model_validate(o["response"]["body"])
        assert c.object == "text_completion"
    assert b.usage is not None
    assert b.usage.output_tokens == sum(
        o["response"]["body"]["usage"]["completion_tokens"] for o in out
    )


def test_responses_batch(shared: ServerHandle) -> None:
    client = shared.openai()
    lines = [
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/responses",
         "body": {"model": "sim-model", "input": f"Say something {i}"}}
        for i in range(4)
    ]  # fmt: skip
    b = _run(shared, lines, endpoint="/v1/responses")
    assert b.status == "completed"
    out = _read(client, b.output_file_id)
    assert [o["custom_id"] for o in out] == [f"r{i}" for i in range(4)]
    for o in out:
        assert o["response"]["body"]["object"] == "response"
    assert b.usage is not None
    assert b.usage.input_tokens == sum(o["response"]["body"]["usage"]["input_tokens"] for o in out)
    assert b.usage.output_tokens == sum(
        o["response"]["body"]["usage"]["output_tokens"] for o in out
    )
    assert b.usage.total_tokens == b.usage.input_tokens + b.usage.output_tokens


def test_two_batches_share_one_input_file(shared: ServerHandle) -> None:
    client = shared.openai()
    fid = _upload(client, [_chat_line(f"s{i}") for i in range(3)])
    a = client.batches.create(input_file_id=fid, endpoint=CHAT, completion_window="24h")
    b = client.batches.create(input_file_id=fid, endpoint=CHAT, completion_window="24h")
    for x in (a, b):
        shared.wait_for(x.id)
        done = client.batches.retrieve(x.id)
        assert done.status == "completed"
        assert [o["custom_id"] for o in _read(client, done.output_file_id)] == ["s0", "s1", "s2"]
