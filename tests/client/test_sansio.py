"""The sans-IO core without any server: line splitting, the wait decision on a fake clock,
list cursors, streamed request bodies, where requests go and with which headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchgate.client import (
    APIResponseError,
    AsyncClient,
    Batch,
    Client,
    WaitTimeout,
    _bodies,
    _flows,
    _ops,
)
from batchgate.client._lines import LineSplitter

# -- lines -------------------------------------------------------------------------------------


def test_line_splitter_across_chunks() -> None:
    lines = LineSplitter()
    got = [*lines.feed(b'{"a"'), *lines.feed(b":1}\r\n\n{"), *lines.feed(b'"b":2}\n{"c"')]
    got += lines.flush()
    assert got == [(1, b'{"a":1}'), (2, b""), (3, b'{"b":2}'), (4, b'{"c"')]
    assert lines.flush() == [] and lines.feed(b"x\n") == [(5, b"x")]


# -- the wait decision -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _batch(status: str) -> Batch:
    return Batch.from_wire({"id": "batch_1", "status": status})


def test_wait_sleeps_the_interval_then_stops_at_the_deadline() -> None:
    clock, seen = Clock(), []
    get = _ops.OPENAI.get("batch_1")
    flow = _flows.wait(get, poll_interval=2.0, timeout=5.0, on_progress=seen.append, clock=clock)
    assert next(flow) is get
    assert flow.send(_batch("in_progress")) == _flows.Sleep(2.0)
    clock.now += 2.0
    assert flow.send(None) is get and flow.send(_batch("in_progress")) == _flows.Sleep(2.0)
    clock.now += 2.0
    next(flow)
    assert flow.send(_batch("finalizing")) == _flows.Sleep(1.0)  # only what is left
    clock.now += 1.0
    next(flow)
    with pytest.raises(WaitTimeout) as err:
        flow.send(_batch("finalizing"))
    assert (err.value.batch_id, err.value.waited, err.value.last.status) == (
        "batch_1", 5.0, "finalizing",
    )  # fmt: skip
    assert len(seen) == 4


def test_wait_returns_the_ended_batch_even_on_the_deadline() -> None:
    clock = Clock()
    flow = _flows.wait(_ops.OPENAI.get("b"), poll_interval=1, timeout=0, on_progress=None,
                       clock=clock)  # fmt: skip
    next(flow)
    with pytest.raises(StopIteration) as stop:
        flow.send(_batch("cancelled"))
    assert stop.value.value.status == "cancelled"


def test_wait_refuses_negative_durations() -> None:
    with pytest.raises(ValueError, match="negative"):
        next(_flows.wait(_ops.OPENAI.get("b"), poll_interval=-1, timeout=None, on_progress=None))


# -- cursors -----------------------------------------------------------------------------------


def _pages(request: httpx.Request) -> httpx.Response:
    after = request.url.params.get("after")  # a server that ignores the cursor
    data = [{"id": "b1"}, {"id": "b2"}] if after != "b9" else []
    return httpx.Response(200, json={"data": data, "has_more": True, "last_id": "b2"})


def test_a_server_that_ignores_the_cursor_stops_the_listing() -> None:
    with Client("http://mock", transport=httpx.MockTransport(_pages)) as client:
        listing = client.batches.list_all()
        assert [next(listing).id, next(listing).id] == ["b1", "b2"]
        with pytest.raises(APIResponseError, match="same page again"):
            next(listing)


def test_before_id_pages_backwards_from_first_id() -> None:
    asked: list[str] = []

    def newer(request: httpx.Request) -> httpx.Response:
        before = request.url.params["before_id"]
        asked.append(before)
        more = before != "m3"
        data = [{"id": f"m{int(before[1:]) - 1}"}]
        return httpx.Response(200, json={"data": data, "has_more": more})

    with Client("http://mock", transport=httpx.MockTransport(newer)) as client:
        ids = [b.id for b in client.messages.batches.list_all(before_id="m5", limit=1)]
    assert (ids, asked) == (["m4", "m3", "m2"], ["m5", "m4", "m3"])


# -- bodies ------------------------------------------------------------------------------------


class Recorder(httpx.BaseTransport):
    """A transport that keeps each request with its body chunks, as it reads them (unlike
    MockTransport, which reads the whole body before its handler runs)."""

    def __init__(self, reply: dict[str, Any] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.chunks: list[list[bytes]] = []
        self.reply = reply or {"id": "file-1", "object": "file"}
        self.before_read: list[int] = []
        self.produced = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.before_read.append(self.produced)
        self.chunks.append(list(request.stream))  # type: ignore[arg-type]
        self.requests.append(request)
        return httpx.Response(200, json=self.reply)

    def lines(self, n: int) -> Iterator[dict[str, Any]]:
        for i in range(n):
            self.produced += 1
            yield {"custom_id": f"r{i}", "body": {"text": "x" * 100}}


def _client(recorder: Recorder, url: str | None = "http://mock", **kwargs: Any) -> Client:
    return Client(url, transport=recorder, **kwargs)


def test_dicts_are_uploaded_lazily_in_chunks() -> None:
    rec = Recorder()
    with _client(rec) as client:
        client.files.create(rec.lines(2000))
    assert rec.before_read == [0]  # nothing was generated before the body was read
    chunks, request = rec.chunks[0], rec.requests[0]
    assert len(chunks) >= 4 and max(map(len, chunks)) < 70_000
    assert "content-length" not in request.headers
    body = b"".join(chunks)
    lines = next(ln for ln in body.split(b"\r\n") if ln.startswith(b'{"custom_id"'))
    assert len(lines.splitlines()) == 2000
    assert b'name="purpose"\r\n\r\nbatch\r\n' in body
    assert b'filename="requests.jsonl"' in body


def test_known_lengths_are_sent_and_match(tmp_path: Path) -> None:
    path = tmp_path / 'we"ird\nname.jsonl'
    path.write_bytes(b'{"a": 1}\n' * 10_000)
    rec = Recorder()
    with _client(rec) as client:
        client.files.create(path)
        client.files.create(b"raw bytes", purpose="user_data")
    for request, chunks in zip(rec.requests, rec.chunks, strict=True):
        assert int(request.headers["content-length"]) == len(b"".join(chunks))
    assert b'filename="we%22ird%0Aname.jsonl"' in b"".join(rec.chunks[0])
    assert b'filename="upload"' in b"".join(rec.chunks[1])


def test_batch_lines_get_method_and_url() -> None:
    rec = Recorder()
    with _client(rec) as client:
        client.files.create(_bodies.batch_lines([{"custom_id": "a", "url": "/v1/x"}], "/v1/e"))
    body = b"".join(rec.chunks[0])
    line = json.loads(next(ln for ln in body.split(b"\r\n") if ln.startswith(b"{")))
    assert line == {"custom_id": "a", "url": "/v1/x", "method": "POST"}


def test_message_batch_body_is_streamed_json(tmp_path: Path) -> None:
    rec = Recorder({"id": "msgbatch_1", "processing_status": "in_progress"})
    with _client(rec) as client:
        client.messages.batches.create(rec.lines(3000))
        assert rec.before_read == [0] and len(rec.chunks[0]) >= 4
        assert json.loads(b"".join(rec.chunks[0])) == {
            "requests": [{"custom_id": f"r{i}", "body": {"text": "x" * 100}} for i in range(3000)]
        }
        path = tmp_path / "bad.jsonl"
        path.write_text('{"custom_id": "a", "params": {}}\n\nnot json\n')
        with pytest.raises(ValueError, match=r"bad.jsonl line 3: not JSON"):
            client.messages.batches.create(path)
        with pytest.raises(TypeError, match="request 2 is a str"):
            client.messages.batches.create([{"custom_id": "a"}, "oops"])  # type: ignore[list-item]


# -- where requests go -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "root"),
    [("http://h:1", "http://h:1"), ("http://h:1/", "http://h:1"), ("http://h:1/v1", "http://h:1"),
     ("http://h:1/v1/", "http://h:1"), ("https://h/proxy/v1", "https://h/proxy")],
)  # fmt: skip
def test_base_url_is_the_server_root(given: str, root: str) -> None:
    rec = Recorder({"id": "b"})
    with _client(rec, given) as client:
        assert client.base_url == root
        client.batches.get("b/../x")
    assert str(rec.requests[0].url) == f"{root}/v1/batches/b%2F..%2Fx"


def test_env_defaults_and_auth_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHGATE_URL", "http://env-host:9/v1")
    monkeypatch.setenv("BATCHGATE_API_KEY", "sk-env")
    rec = Recorder({"id": "b"})
    with _client(rec, None, headers={"x-extra": "1"}) as client:
        client.batches.get("b")
    request = rec.requests[0]
    assert str(request.url) == "http://env-host:9/v1/batches/b"
    assert request.headers["authorization"] == "Bearer sk-env"
    assert request.headers["x-api-key"] == "sk-env" and request.headers["x-extra"] == "1"

    monkeypatch.delenv("BATCHGATE_URL")
    monkeypatch.delenv("BATCHGATE_API_KEY")
    with _client(rec, None) as client:
        assert client.base_url == "http://127.0.0.1:8080"
        client.batches.get("b")
    assert "authorization" not in rec.requests[1].headers
    assert "x-api-key" not in rec.requests[1].headers


def test_a_given_http_client_is_used_and_its_base_url_kept() -> None:
    rec = Recorder({"id": "b"})
    http = httpx.Client(base_url="http://given:7/v1", transport=rec)
    with Client(http_client=http, api_key="k") as client:
        assert client.base_url == "http://given:7"
        client.batches.cancel("b")
    assert str(rec.requests[0].url) == "http://given:7/v1/batches/b/cancel"
    assert rec.requests[0].method == "POST" and not http.is_closed
    http.close()
    with pytest.raises(ValueError, match="not both"):
        Client(http_client=httpx.Client(), transport=rec)


class AsyncRecorder(httpx.AsyncBaseTransport):
    def __init__(self, recorder: Recorder) -> None:
        self.sync = recorder

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        rec = self.sync
        rec.before_read.append(rec.produced)
        rec.chunks.append([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        rec.requests.append(request)
        return httpx.Response(200, json=rec.reply)


@pytest.mark.anyio
async def test_the_async_client_streams_the_same_bodies() -> None:
    rec = Recorder({"id": "x", "object": "file"})
    async with AsyncClient("http://mock", transport=AsyncRecorder(rec)) as client:
        await client.files.create(rec.lines(2000))
        produced = rec.produced
        await client.messages.batches.create(rec.lines(2000))
    assert rec.before_read == [0, produced] and all(len(c) >= 4 for c in rec.chunks)
    assert json.loads(b"".join(rec.chunks[1]))["requests"][1999]["custom_id"] == "r1999"


def test_a_missing_path_fails_before_anything_is_sent(tmp_path: Path) -> None:
    rec = Recorder()
    with _client(rec) as client:
        for send in (client.files.create, client.batches.create, client.messages.batches.create):
            with pytest.raises(FileNotFoundError):
                send(tmp_path / "missing.jsonl")
    assert rec.requests == []
