"""The Files API (wire spec §1) through the official openai SDK against a live server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from openai.types import FileDeleted, FileObject

from batchgate.sim import SimHandle
from tests.helpers.servers import ServerHandle, run_server

THIRTY_DAYS = 30 * 86400


def _jsonl(n: int, tag: str = "x") -> bytes:
    return b"".join(
        json.dumps({
            "custom_id": f"{tag}{i}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "sim-model", "messages": [{"role": "user", "content": f"{tag} {i}"}]},
        }).encode() + b"\n"
        for i in range(n)
    )  # fmt: skip


def _n_files(client: openai.OpenAI) -> int:
    return len(list(client.files.list(limit=100)))


def _upload_many(client: openai.OpenAI, n: int) -> list[str]:
    """Upload ``n`` batch files, a few ms apart so their ids (and created order) are distinct."""
    out = []
    for i in range(n):
        out.append(
            client.files.create(file=(f"f{i}.jsonl", _jsonl(1, f"f{i}")), purpose="batch").id
        )
        time.sleep(0.003)
    return out


@pytest.fixture(scope="module")
def shared(
    sim_session: SimHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerHandle]:
    """One live server for the tests here that need no fresh state (each makes its own files
    and batches); tests that count or list everything use their own server."""
    d = tmp_path_factory.mktemp("shared")
    with run_server(f"sqlite:///{d / 'db.sqlite'}", d / "data", upstream_url=sim_session.url) as s:
        yield s


def test_upload_with_filename_tuple(shared: ServerHandle) -> None:
    client = shared.openai()
    data = _jsonl(3)
    before = int(time.time())
    f = client.files.create(file=("requests.jsonl", data, "application/jsonl"), purpose="batch")
    after = int(time.time())
    assert f.id.startswith("file-")
    assert f.object == "file"
    assert f.filename == "requests.jsonl"
    assert f.bytes == len(data)
    assert f.purpose == "batch"
    assert f.status == "processed"
    assert before <= f.created_at <= after
    assert f.expires_at == f.created_at + THIRTY_DAYS  # default TTL for purpose=batch
    assert client.files.content(f.id).content == data


def test_upload_raw_bytes_is_named_upload(shared: ServerHandle) -> None:
    client = shared.openai()
    data = _jsonl(2)
    f = client.files.create(file=data, purpose="batch")
    assert f.filename == "upload"
    assert f.bytes == len(data)
    assert client.files.retrieve(f.id).filename == "upload"


def test_upload_path_uses_basename(shared: ServerHandle, tmp_path: Path) -> None:
    client = shared.openai()
    p = tmp_path / "my input.jsonl"
    p.write_bytes(_jsonl(4))
    f = client.files.create(file=p, purpose="batch")
    assert f.filename == "my input.jsonl"
    assert f.bytes == p.stat().st_size
    assert client.files.content(f.id).content == p.read_bytes()


def test_upload_with_open_file_handle(shared: ServerHandle, tmp_path: Path) -> None:
    client = shared.openai()
    p = tmp_path / "handle.jsonl"
    p.write_bytes(_jsonl(2))
    with p.open("rb") as fh:
        f = client.files.create(file=fh, purpose="batch")
    assert f.filename == "handle.jsonl"
    assert f.bytes == p.stat().st_size


def test_expires_after_sets_expires_at(shared: ServerHandle) -> None:
    client = shared.openai()
    for seconds in (3600, 7200, 2_592_000):
        f = client.files.create(
            file=("e.jsonl", _jsonl(1)), purpose="batch",
            expires_after={"anchor": "created_at", "seconds": seconds},
        )  # fmt: skip
        assert f.expires_at == f.created_at + seconds
        assert client.files.retrieve(f.id).expires_at == f.created_at + seconds


def test_expires_after_out_of_range_is_400(shared: ServerHandle) -> None:
    client = shared.openai()
    stored = _n_files(client)
    for seconds in (3599, 2_592_001):
        with pytest.raises(openai.BadRequestError) as ei:
            client.files.create(
                file=("e.jsonl", _jsonl(1)), purpose="batch",
                expires_after={"anchor": "created_at", "seconds": seconds},
            )  # fmt: skip
        assert ei.value.status_code == 400
        assert ei.value.param is not None and ei.value.param.startswith("expires_after")
    with pytest.raises(openai.BadRequestError) as ei:
        client.files.create(
            file=("e.jsonl", _jsonl(1)),
            purpose="batch",
            expires_after={"anchor": "last_accessed", "seconds": 3600},  # type: ignore[typeddict-item]
        )
    assert ei.value.param == "expires_after"
    assert _n_files(client) == stored  # nothing was stored


def test_bad_purpose_is_400_with_param(shared: ServerHandle) -> None:
    client = shared.openai()
    stored = _n_files(client)
    with pytest.raises(openai.BadRequestError) as ei:
        client.files.create(file=("x.jsonl", _jsonl(1)), purpose="nonsense")  # type: ignore[arg-type]
    err = ei.value
    assert err.status_code == 400
    assert err.param == "purpose"
    assert err.type == "invalid_request_error"
    assert err.request_id  # x-request-id reached the SDK
    assert _n_files(client) == stored


def test_upload_without_file_part_is_400(shared: ServerHandle) -> None:
    http = shared.http()
    r = http.post("/v1/files", data={"purpose": "batch"}, files={"other": ("a", b"x")})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "file"
    assert r.json()["error"]["code"] == "missing_required_parameter"


def test_retrieve_and_strict_file_object_shape(shared: ServerHandle) -> None:
    client = shared.openai()
    data = _jsonl(5)
    f = client.files.create(file=("shape.jsonl", data), purpose="batch")
    got = client.files.retrieve(f.id)
    assert got == f
    raw = shared.http().get(f"/v1/files/{f.id}")
    assert raw.status_code == 200
    doc = raw.json()
    assert set(doc) == {
        "id", "object", "bytes", "created_at", "filename", "purpose", "status", "expires_at",
        "status_details",
    }  # fmt: skip
    assert doc == {
        "id": f.id, "object": "file", "bytes": len(data), "created_at": f.created_at,
        "filename": "shape.jsonl", "purpose": "batch", "status": "processed",
        "expires_at": f.created_at + THIRTY_DAYS, "status_details": None,
    }  # fmt: skip
    for key in ("bytes", "created_at", "expires_at"):
        assert type(doc[key]) is int
    FileObject.model_validate(doc, strict=True)


def test_list_limit_order_and_purpose(make_server: Callable[..., ServerHandle]) -> None:
    server = make_server()
    client = server.openai()
    batch_ids = _upload_many(client, 4)
    other = client.files.create(file=("u.jsonl", _jsonl(1)), purpose="user_data").id
    everything = [*batch_ids, other]

    desc = client.files.list()
    assert [f.id for f in desc.data] == everything[::-1]
    assert desc.has_more is False

    asc = client.files.list(order="asc")
    assert [f.id for f in asc.data] == everything

    only_batch = client.files.list(purpose="batch")
    assert [f.id for f in only_batch.data] == batch_ids[::-1]
    assert all(f.purpose == "batch" for f in only_batch.data)
    assert [f.id for f in client.files.list(purpose="user_data").data] == [other]

    first = client.files.list(limit=2, order="asc")
    assert [f.id for f in first.data] == everything[:2]
    assert first.has_more is True

    raw = server.http().get("/v1/files", params={"limit": 2, "order": "desc"}).json()
    assert raw["object"] == "list"
    assert [d["id"] for d in raw["data"]] == everything[::-1][:2]
    assert raw["first_id"] == everything[-1]
    assert raw["last_id"] == everything[-2]
    assert raw["has_more"] is True
    for d in raw["data"]:
        FileObject.model_validate(d, strict=True)


def test_list_after_cursor(make_server: Callable[..., ServerHandle]) -> None:
    client = make_server().openai()
    ids = _upload_many(client, 5)
    page = client.files.list(after=ids[2], order="asc")
    assert [f.id for f in page.data] == ids[3:]
    assert page.has_more is False
    page = client.files.list(after=ids[2], order="desc")
    assert [f.id for f in page.data] == ids[:2][::-1]
    last = client.files.list(after=ids[0], order="desc")
    assert last.data == []
    assert last.has_more is False


def test_list_auto_pagination_yields_each_file_once(
    make_server: Callable[..., ServerHandle],
) -> None:
    client = make_server().openai()
    ids = _upload_many(client, 7)
    for order in ("asc", "desc"):
        seen = [f.id for f in client.files.list(limit=2, order=order)]  # type: ignore[arg-type]
        assert seen == (ids if order == "asc" else ids[::-1])
        assert len(set(seen)) == 7

        pages = list(client.files.list(limit=2, order=order).iter_pages())  # type: ignore[arg-type]
        assert [len(p.data) for p in pages] == [2, 2, 2, 1]
        assert [p.has_more for p in pages] == [True, True, True, False]


def test_list_exact_multiple_ends_on_has_more_false(
    make_server: Callable[..., ServerHandle],
) -> None:
    client = make_server().openai()
    ids = _upload_many(client, 4)
    pages = list(client.files.list(limit=2, order="asc").iter_pages())
    assert [[f.id for f in p.data] for p in pages] == [ids[:2], ids[2:]]
    assert pages[-1].has_more is False


def test_list_bad_query_is_400(shared: ServerHandle) -> None:
    http = shared.http()
    for query in ({"order": "sideways"}, {"limit": "0"}, {"limit": "10001"}, {"limit": "x"}):
        r = http.get("/v1/files", params=query)
        assert r.status_code == 400, query
        assert r.json()["error"]["param"] == next(iter(query))


def test_content_bytes_round_trip(shared: ServerHandle) -> None:
    client = shared.openai()
    data = b"\xef\xbb\xbf" + _jsonl(3).replace(b"\n", b"\r\n") + b"\x00\xff tail"
    f = client.files.create(file=("binary.jsonl", data), purpose="batch")
    assert f.bytes == len(data)
    assert client.files.content(f.id).content == data
    raw = shared.http().get(f"/v1/files/{f.id}/content", headers={"Accept": "application/binary"})
    assert raw.status_code == 200
    assert raw.content == data


def test_delete_then_gone(make_server: Callable[..., ServerHandle]) -> None:
    srv = make_server()
    client = srv.openai()
    keep = client.files.create(file=("keep.jsonl", _jsonl(1)), purpose="batch")
    f = client.files.create(file=("gone.jsonl", _jsonl(1)), purpose="batch")
    deleted = client.files.delete(f.id)
    assert isinstance(deleted, FileDeleted)
    assert (deleted.id, deleted.object, deleted.deleted) == (f.id, "file", True)
    assert not srv.blobs.path(f.id).exists()  # the bytes are gone too
    assert srv.blobs.path(keep.id).exists()
    with pytest.raises(openai.NotFoundError) as ei:
        client.files.retrieve(f.id)
    assert ei.value.status_code == 404
    with pytest.raises(openai.NotFoundError):
        client.files.content(f.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(f.id)
    assert [x.id for x in client.files.list().data] == [keep.id]


def test_unknown_ids_are_404(shared: ServerHandle) -> None:
    client = shared.openai()
    with pytest.raises(openai.NotFoundError) as ei:
        client.files.retrieve("file-doesnotexist")
    assert ei.value.type == "not_found_error"
    with pytest.raises(openai.NotFoundError):
        client.files.content("file-doesnotexist")
    r = shared.http().get("/v1/files/file-doesnotexist/content")
    assert r.status_code == 404
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    with pytest.raises(openai.NotFoundError):
        client.files.delete("file-doesnotexist")


def test_wait_for_processing_returns_processed(shared: ServerHandle) -> None:
    client = shared.openai()
    f = client.files.create(file=("w.jsonl", _jsonl(1)), purpose="batch")
    assert client.files.wait_for_processing(f.id, poll_interval=0.01).status == "processed"
