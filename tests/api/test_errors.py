"""The error envelope, request ids and the HTTP edges the SDKs hit (wire spec §1.3, §2.1, §5)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from batchgate.errors import StoreUnavailable
from batchgate.sim import SimHandle
from tests.helpers.servers import ServerHandle, run_server

CHAT = "/v1/chat/completions"
REQ_ID = re.compile(r"^req_[0-9a-z]{26}$")


def _jsonl(n: int) -> bytes:
    return b"".join(
        json.dumps({
            "custom_id": f"r{i}", "method": "POST", "url": CHAT,
            "body": {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]},
        }).encode() + b"\n"
        for i in range(n)
    )  # fmt: skip


def _assert_envelope(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert REQ_ID.match(r.headers["x-request-id"]), r.headers.get("x-request-id")
    doc = r.json()
    assert set(doc) == {"error"}
    err = doc["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["type"], str) and err["type"]
    assert err["param"] is None or isinstance(err["param"], str)
    assert err["code"] is None or isinstance(err["code"], str)
    return dict(err)


def _completed_batch(srv: ServerHandle) -> str:
    client = srv.openai()
    fid = client.files.create(file=("in.jsonl", _jsonl(2)), purpose="batch").id
    b = client.batches.create(input_file_id=fid, endpoint=CHAT, completion_window="24h")
    assert srv.wait_for(b.id)["status"] == "completed"
    return b.id


@pytest.fixture(scope="module")
def shared(
    sim_session: SimHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerHandle]:
    """One live server for the tests here that need no fresh state (each makes its own files
    and batches); tests that count or list everything use their own server."""
    d = tmp_path_factory.mktemp("shared")
    with run_server(f"sqlite:///{d / 'db.sqlite'}", d / "data", upstream_url=sim_session.url) as s:
        yield s


def test_every_response_has_a_distinct_request_id(shared: ServerHandle) -> None:
    http = shared.http()
    responses = [
        http.get("/health"),
        http.get("/v1/files"),
        http.get("/v1/batches"),
        http.get("/v1/files/file-nope"),
        http.get("/v1/nothing-here"),
        http.post("/v1/batches", content=b"{"),
    ]
    ids = [r.headers.get("x-request-id") for r in responses]
    assert all(i is not None and REQ_ID.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)


def test_sdk_error_carries_request_id(shared: ServerHandle) -> None:
    client = shared.openai()
    with pytest.raises(openai.NotFoundError) as ei:
        client.batches.retrieve("batch_nope")
    assert ei.value.request_id is not None and REQ_ID.match(ei.value.request_id)
    assert ei.value.body == {
        "message": "No batch found with id 'batch_nope'.",
        "type": "not_found_error",
        "param": "batch_id",
        "code": "not_found",
    }


def test_unknown_route_is_404_envelope(shared: ServerHandle) -> None:
    http = shared.http()
    for path in ("/v1/nothing", "/v2/batches", "/v1/batches/x/y/z", "/"):
        err = _assert_envelope(http.get(path), 404)
        assert err["type"] == "not_found_error"
        assert err["code"] == "not_found"


def test_wrong_method_is_405_envelope(shared: ServerHandle) -> None:
    http = shared.http()
    err = _assert_envelope(http.put("/v1/batches"), 405)
    assert err["type"] == "invalid_request_error"
    _assert_envelope(http.patch("/v1/batches/batch_x"), 405)
    _assert_envelope(http.delete("/v1/batches/batch_x"), 404)  # DELETE is an extension


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/batches", "GET, HEAD, POST"),
        ("PATCH", "/v1/batches/batch_x", "DELETE, GET, HEAD"),
        ("GET", "/v1/batches/batch_x/cancel", "POST"),
        ("GET", "/v1/batches/batch_x/retry", "POST"),
        ("PUT", "/v1/files/file-x", "DELETE, GET, HEAD"),
        ("DELETE", "/v1/messages/batches", "GET, HEAD, POST"),
        ("PUT", "/qai/v1/batch", "POST"),
        ("POST", "/health", "GET, HEAD"),
    ],
)  # fmt: skip
def test_a_405_names_every_allowed_method(
    shared: ServerHandle, method: str, path: str, allow: str
) -> None:
    """RFC 9110: a 405 carries ``Allow`` with every method the path serves (routes are one
    per method, so this is the union of them), and the message says the same."""
    r = shared.http().request(method, path)
    assert r.status_code == 405 and r.headers["allow"] == allow, (r.headers, r.text)
    assert allow in r.text


def test_not_found_envelopes(shared: ServerHandle) -> None:
    http = shared.http()
    for path in ("/v1/files/file-x", "/v1/files/file-x/content", "/v1/batches/batch_x"):
        err = _assert_envelope(http.get(path), 404)
        assert err["type"] == "not_found_error"
    _assert_envelope(http.delete("/v1/files/file-x"), 404)
    _assert_envelope(http.post("/v1/batches/batch_x/cancel"), 404)


def test_invalid_json_body_is_400_not_5xx(shared: ServerHandle) -> None:
    http = shared.http()
    for raw in (b"{", b"not json", b'{"a": }', b"\xff\xfe"):
        r = http.post("/v1/batches", content=raw, headers={"Content-Type": "application/json"})
        err = _assert_envelope(r, 400)
        assert err["type"] == "invalid_request_error"
        assert err["code"] == "invalid_json"
    for raw in (b"[]", b'"x"', b"42", b"null"):
        r = http.post("/v1/batches", content=raw, headers={"Content-Type": "application/json"})
        _assert_envelope(r, 400)
    # an empty body is {} and so misses the first required parameter
    err = _assert_envelope(http.post("/v1/batches", content=b""), 400)
    assert (err["code"], err["param"]) == ("missing_required_parameter", "input_file_id")


def test_wrong_types_in_create_are_400(shared: ServerHandle) -> None:
    http = shared.http()
    fid = shared.openai().files.create(file=("i.jsonl", _jsonl(1)), purpose="batch").id
    base = {"input_file_id": fid, "endpoint": CHAT, "completion_window": "24h"}
    before = http.get("/v1/batches", params={"limit": 100}).json()["data"]
    for over, param in (
        ({"input_file_id": 5}, "input_file_id"),
        ({"input_file_id": ["a"]}, "input_file_id"),
        ({"endpoint": 5}, "endpoint"),
        ({"completion_window": 24}, "completion_window"),
        ({"metadata": "x"}, "metadata"),
        ({"output_expires_after": {"anchor": "created_at", "seconds": 60}}, "output_expires_after"),
        ({"output_expires_after": {"anchor": "now", "seconds": 7200}}, "output_expires_after"),
        ({"output_expires_after": 7200}, "output_expires_after"),
    ):
        err = _assert_envelope(http.post("/v1/batches", json={**base, **over}), 400)
        assert err["param"] == param, over
    assert http.get("/v1/batches", params={"limit": 100}).json()["data"] == before


def test_upload_errors_are_400(shared: ServerHandle) -> None:
    http = shared.http()
    err = _assert_envelope(http.post("/v1/files", json={"purpose": "batch"}), 400)
    assert err["type"] == "invalid_request_error"
    err = _assert_envelope(http.post("/v1/files", files={"file": ("a.jsonl", b"{}")}), 400)
    assert (err["param"], err["code"]) == ("purpose", "missing_required_parameter")
    err = _assert_envelope(
        http.post("/v1/files", data={"purpose": "batch", "expires_after[seconds]": "abc",
                                     "expires_after[anchor]": "created_at"},
                  files={"file": ("a.jsonl", b"{}")}),
        400,
    )  # fmt: skip
    assert err["param"] == "expires_after"


def test_bad_list_limit_is_400(shared: ServerHandle) -> None:
    http = shared.http()
    for path in ("/v1/batches", "/v1/files"):
        for limit in ("0", "abc", "-5", "1e3"):
            err = _assert_envelope(http.get(path, params={"limit": limit}), 400)
            assert (err["param"], err["code"]) == ("limit", "invalid_value"), (path, limit)


def test_cancel_post_with_json_content_type_and_no_body(server: ServerHandle, sim: Any) -> None:
    sim.configure(latency_ms=200)
    client = server.openai()
    fid = client.files.create(file=("in.jsonl", _jsonl(40)), purpose="batch").id
    b = client.batches.create(input_file_id=fid, endpoint=CHAT, completion_window="24h")
    r = server.http().post(
        f"/v1/batches/{b.id}/cancel",
        headers={"Content-Type": "application/json", "Content-Length": "0"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("cancelling", "cancelled")
    assert r.json()["cancelling_at"] is not None
    assert server.wait_for(b.id)["status"] == "cancelled"


def test_delete_with_json_content_type_and_no_body(shared: ServerHandle) -> None:
    fid = shared.openai().files.create(file=("in.jsonl", _jsonl(1)), purpose="batch").id
    r = shared.http().delete(f"/v1/files/{fid}", headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": fid, "object": "file", "deleted": True}
    _assert_envelope(shared.http().get(f"/v1/files/{fid}"), 404)


def test_cancel_completed_batch_is_409(shared: ServerHandle) -> None:
    bid = _completed_batch(shared)
    r = shared.http().post(
        f"/v1/batches/{bid}/cancel",
        headers={"Content-Type": "application/json", "Content-Length": "0"},
    )
    err = _assert_envelope(r, 409)
    assert r.headers["x-should-retry"] == "false"
    assert err["type"] == "conflict_error"
    assert "completed" in err["message"]

    client = shared.openai()
    with pytest.raises(openai.ConflictError) as ei:
        client.batches.cancel(bid)
    assert ei.value.status_code == 409
    # x-should-retry: false stops the SDK from retrying, even with retries on
    sent: list[str] = []
    http_client = openai.DefaultHttpxClient(
        event_hooks={"request": [lambda r: sent.append(r.url.path)]}
    )
    retrying = shared.openai(http_client=http_client).with_options(max_retries=3)
    with pytest.raises(openai.ConflictError):
        retrying.batches.cancel(bid)
    assert sent == [f"/v1/batches/{bid}/cancel"]
    assert client.batches.retrieve(bid).status == "completed"


def test_cancel_failed_batch_is_409(shared: ServerHandle) -> None:
    client = shared.openai()
    fid = client.files.create(file=("bad.jsonl", b"not json\n"), purpose="batch").id
    b = client.batches.create(input_file_id=fid, endpoint=CHAT, completion_window="24h")
    assert shared.wait_for(b.id)["status"] == "failed"
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(b.id)
    assert client.batches.retrieve(b.id).status == "failed"


def test_health(shared: ServerHandle) -> None:
    r = shared.http().get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert REQ_ID.match(r.headers["x-request-id"])


def test_sdk_base_url_with_trailing_slash_works(shared: ServerHandle) -> None:
    client = openai.OpenAI(base_url=shared.url + "/v1/", api_key="k", max_retries=0)
    try:
        assert client.batches.list().object == "list"
        assert client.files.list().object == "list"
        with pytest.raises(openai.NotFoundError):
            client.batches.retrieve("batch_nope")
    finally:
        client.close()


def test_unexpected_crash_is_500_envelope_with_request_id(
    server: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("injected bug")

    monkeypatch.setattr(server.store, "list_files", boom)
    err = _assert_envelope(server.http().get("/v1/files"), 500)
    assert err == {
        "message": "Internal server error.", "type": "server_error", "param": None, "code": None
    }  # fmt: skip
    with pytest.raises(openai.InternalServerError) as ei:
        server.openai().files.list()
    assert ei.value.status_code == 500
    assert ei.value.request_id is not None and REQ_ID.match(ei.value.request_id)
    assert server.http().get("/health").status_code == 200  # the server lives on


def test_store_outage_is_503_envelope(
    server: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_a: Any, **_k: Any) -> Any:
        raise StoreUnavailable("database error: connection refused")

    monkeypatch.setattr(server.store, "get_batch", down)
    err = _assert_envelope(server.http().get("/v1/batches/batch_x"), 503)
    assert err["type"] == "server_error"
    with pytest.raises(openai.InternalServerError) as ei:
        server.openai().batches.retrieve("batch_x")
    assert ei.value.status_code == 503


def test_content_of_file_whose_blob_is_gone_is_404(shared: ServerHandle) -> None:
    client = shared.openai()
    f = client.files.create(file=("gone.jsonl", _jsonl(1)), purpose="batch")
    shared.blobs.delete(f.id)
    err = _assert_envelope(shared.http().get(f"/v1/files/{f.id}/content"), 404)
    assert err["type"] == "not_found_error"
    with pytest.raises(openai.NotFoundError):
        client.files.content(f.id)


def test_non_ascii_digits_in_expires_after_are_400(shared: ServerHandle) -> None:
    http = shared.http()
    for seconds in ("\u00b2\u00b2\u00b2\u00b2", "\u0663\u0666\u0660\u0660", "36OO", "-3600", ""):
        r = http.post(
            "/v1/files",
            data={"purpose": "batch", "expires_after[anchor]": "created_at",
                  "expires_after[seconds]": seconds},
            files={"file": ("a.jsonl", b"{}\n")},
        )  # fmt: skip
        err = _assert_envelope(r, 400)
        assert err["param"] == "expires_after", seconds


def test_a_client_that_hangs_up_mid_upload_is_no_crash(
    server: ServerHandle, caplog: pytest.LogCaptureFixture
) -> None:
    import socket
    import time

    host, port = server.url.removeprefix("http://").split(":")
    head = (
        "POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n')
        time.sleep(0.2)
    with caplog.at_level("INFO", logger="batchgate.api"):
        deadline = time.monotonic() + 5
        while "client_disconnected" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "client_disconnected" in caplog.text
    assert "unhandled_error" not in caplog.text
    assert server.http().get("/health").status_code == 200
