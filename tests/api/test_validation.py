"""Input-file validation (wire spec §2.4, §2.6): a bad file ends the batch ``failed`` with
line-numbered ``errors``; odd-but-valid files (BOM, CRLF, no final newline) run."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from openai.types import Batch

from batchgate.config import Limits
from batchgate.sim import SimHandle
from tests.helpers.servers import ServerHandle, run_server

CHAT = "/v1/chat/completions"


def _line(cid: str, **over: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "custom_id": cid, "method": "POST", "url": CHAT,
        "body": {"model": "sim-model", "messages": [{"role": "user", "content": f"hi {cid}"}]},
    }  # fmt: skip
    obj.update(over)
    return obj


def _enc(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _ok(cid: str, **over: Any) -> bytes:
    return _enc(_line(cid, **over))


def _body(**over: Any) -> dict[str, Any]:
    return {"model": "sim-model", "messages": [{"role": "user", "content": "x"}], **over}


@pytest.fixture(scope="module")
def shared(
    sim_session: SimHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerHandle]:
    """One live server for the many independent validation cases (each uses its own batch)."""
    d = tmp_path_factory.mktemp("validation")
    with run_server(f"sqlite:///{d / 'db.sqlite'}", d / "data", upstream_url=sim_session.url) as s:
        yield s


def _submit(srv: ServerHandle, data: bytes, endpoint: str = CHAT) -> Batch:
    client = srv.openai()
    fid = client.files.create(file=("input.jsonl", data), purpose="batch").id
    b = client.batches.create(
        input_file_id=fid,
        endpoint=endpoint,
        completion_window="24h",  # type: ignore[arg-type]
    )
    srv.wait_for(b.id)
    return client.batches.retrieve(b.id)


def _assert_failed(srv: ServerHandle, b: Batch) -> list[dict[str, Any]]:
    assert b.status == "failed"
    assert b.failed_at is not None and b.failed_at >= b.created_at
    assert b.in_progress_at is None
    assert b.finalizing_at is None and b.completed_at is None
    assert b.output_file_id is None
    assert b.error_file_id is None
    assert srv.store.count_rows(b.id) == {}  # no request rows are left behind
    assert b.errors is not None
    assert b.errors.object == "list"
    assert b.errors.data
    raw = srv.http().get(f"/v1/batches/{b.id}").json()
    Batch.model_validate(raw, strict=True)
    for e in raw["errors"]["data"]:
        assert set(e) == {"code", "message", "param", "line"}
        assert isinstance(e["message"], str) and e["message"]
    return list(raw["errors"]["data"])


# (name, file bytes, [(code, line, param)])
CASES: list[tuple[str, bytes, list[tuple[str, int | None, str | None]]]] = [
    ("invalid_json", b"\n".join([_ok("a"), b'{"custom_id": "b", ', _ok("c")]),
     [("invalid_json_line", 2, None)]),
    ("truncated_last_line", b"\n".join([_ok("a"), _ok("b")[:-1]]),
     [("invalid_json_line", 2, None)]),
    ("blank_line_in_middle", b"\n".join([_ok("a"), b"", _ok("c")]) + b"\n",
     [("blank_line", 2, None)]),
    ("whitespace_line_in_middle", b"\n".join([_ok("a"), _ok("b"), b"   \t", _ok("d")]),
     [("blank_line", 3, None)]),
    ("invalid_encoding", b"\n".join([_ok("a"), b'{"custom_id": "\xff\xfe"}', _ok("c")]),
     [("invalid_encoding", 2, None)]),
    ("json_array_line", b"\n".join([_ok("a"), _enc([_line("b")])]),
     [("invalid_request", 2, None)]),
    ("json_string_line", b"\n".join([_ok("a"), b'"just a string"']),
     [("invalid_request", 2, None)]),
    ("missing_custom_id", _enc({k: v for k, v in _line("a").items() if k != "custom_id"}),
     [("missing_required_parameter", 1, "custom_id")]),
    ("missing_method", b"\n".join([_ok("a"), _enc({k: v for k, v in _line("b").items()
                                                   if k != "method"})]),
     [("missing_required_parameter", 2, "method")]),
    ("missing_url", _enc({k: v for k, v in _line("a").items() if k != "url"}),
     [("missing_required_parameter", 1, "url")]),
    ("missing_body", _enc({k: v for k, v in _line("a").items() if k != "body"}),
     [("missing_required_parameter", 1, "body")]),
    ("missing_model", _ok("a", body={"messages": [{"role": "user", "content": "x"}]}),
     [("missing_required_parameter", 1, "body.model")]),
    ("missing_messages", _ok("a", body={"model": "sim-model"}),
     [("missing_required_parameter", 1, "body.messages")]),
    ("url_not_endpoint", b"\n".join([_ok("a"), _ok("b", url="/v1/embeddings")]),
     [("invalid_url", 2, "url")]),
    ("method_get", _ok("a", method="GET"), [("invalid_method", 1, "method")]),
    ("stream_true", b"\n".join([_ok("a"), _ok("b"), _ok("c", body=_body(stream=True))]),
     [("streaming_unsupported", 3, "body.stream")]),
    ("custom_id_not_string", _ok("a", custom_id=7), [("invalid_request", 1, "custom_id")]),
    ("body_not_object", _ok("a", body="text"), [("invalid_request", 1, "body")]),
    ("duplicate_custom_id", b"\n".join([_ok("a"), _ok("b"), _ok("a"), _ok("c"), _ok("b")]),
     [("duplicate_custom_id", 3, "custom_id"), ("duplicate_custom_id", 5, "custom_id")]),
    ("several_errors_in_line_order",
     b"\n".join([_ok("a"), b"nope", _ok("c"), _ok("d", method="PUT"), _ok("e", url="/v1/x")]),
     [("invalid_json_line", 2, None), ("invalid_method", 4, "method"), ("invalid_url", 5, "url")]),
    ("every_kind_in_one_pass",  # a broken line and a duplicate: both, in line order
     b"\n".join([_ok("a"), _ok("b"), b"{broken", _ok("d", method="PUT"), _ok("a"), _ok("b")]),
     [("invalid_json_line", 3, None), ("invalid_method", 4, "method"),
      ("duplicate_custom_id", 5, "custom_id"), ("duplicate_custom_id", 6, "custom_id")]),
    ("empty_file", b"", [("empty_file", None, None)]),
    ("only_newlines", b"\n\n\n", [("empty_file", None, None)]),
    ("only_bom", b"\xef\xbb\xbf", [("empty_file", None, None)]),
    ("bom_then_blank_lines", b"\xef\xbb\xbf\r\n\r\n", [("empty_file", None, None)]),
]  # fmt: skip


@pytest.mark.parametrize(("data", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_file_fails_batch(
    shared: ServerHandle, data: bytes, expected: list[tuple[str, int | None, str | None]]
) -> None:
    b = _submit(shared, data)
    errors = _assert_failed(shared, b)
    assert [(e["code"], e["line"], e["param"]) for e in errors] == expected
    for e in errors:
        if e["line"] is not None:
            assert f"Line {e['line']}" in e["message"]
    assert b.request_counts is not None
    assert (b.request_counts.completed, b.request_counts.failed) == (0, 0)


def test_failures_on_every_backend(db_url: str, make_server: Callable[..., ServerHandle]) -> None:
    srv = make_server(db_url)
    dup = _submit(srv, b"\n".join([_ok("a"), _ok("b"), _ok("a"), _ok("c"), _ok("b")]))
    errors = _assert_failed(srv, dup)
    assert [(e["code"], e["line"], e["param"]) for e in errors] == [
        ("duplicate_custom_id", 3, "custom_id"), ("duplicate_custom_id", 5, "custom_id"),
    ]  # fmt: skip
    several = _submit(srv, b"\n".join([_ok("a"), b"nope", b"", _ok("d", method="PUT")]))
    errors = _assert_failed(srv, several)
    assert [(e["code"], e["line"]) for e in errors] == [
        ("invalid_json_line", 2), ("blank_line", 3), ("invalid_method", 4),
    ]  # fmt: skip
    both = _submit(srv, b"\n".join([_ok("a"), _ok("b"), b"{broken", _ok("c"), _ok("a")]))
    assert [(e["code"], e["line"]) for e in _assert_failed(srv, both)] == [
        ("invalid_json_line", 3), ("duplicate_custom_id", 5),
    ]  # fmt: skip
    assert srv.store.count_rows(both.id) == {}  # the rows that found the duplicate are gone
    ok = _submit(srv, b"\xef\xbb\xbf" + b"\r\n".join(_ok(f"v{i}") for i in range(3)) + b"\r\n\r\n")
    assert ok.status == "completed"
    assert srv.store.count_rows(ok.id) == {"succeeded": 3}


def test_invalid_json_message(shared: ServerHandle) -> None:
    b = _submit(shared, b"\n".join([_ok("a"), b"{oops"]))
    (e,) = _assert_failed(shared, b)
    assert "This line is not parseable as valid JSON." in e["message"]


def test_embeddings_line_without_input(shared: ServerHandle) -> None:
    bad = {"custom_id": "e", "method": "POST", "url": "/v1/embeddings",
           "body": {"model": "sim-embed"}}  # fmt: skip
    b = _submit(shared, _enc(bad), endpoint="/v1/embeddings")
    errors = _assert_failed(shared, b)
    assert [(e["code"], e["line"], e["param"]) for e in errors] == [
        ("missing_required_parameter", 1, "body.input")
    ]


def test_sim_is_never_called_for_a_failed_batch(shared: ServerHandle, sim: SimHandle) -> None:
    b = _submit(shared, b"\n".join([_ok("a"), _ok("b"), b"[]"]))
    _assert_failed(shared, b)
    assert sim.stats()["requests"] == 0


def test_too_many_tasks(make_server: Callable[..., ServerHandle]) -> None:
    srv = make_server(limits=Limits(max_lines=3))
    b = _submit(srv, b"\n".join(_ok(f"r{i}") for i in range(4)))
    errors = _assert_failed(srv, b)
    assert [(e["code"], e["line"], e["param"]) for e in errors] == [("too_many_tasks", None, None)]
    assert "3" in errors[0]["message"]
    # exactly at the limit is fine, including with trailing blank lines
    for data in (
        b"\n".join(_ok(f"r{i}") for i in range(3)),
        b"\n".join(_ok(f"r{i}") for i in range(3)) + b"\n",
        b"\n".join(_ok(f"r{i}") for i in range(3)) + b"\n\n\n",
        b"\r\n".join(_ok(f"r{i}") for i in range(3)) + b"\r\n\r\n",
    ):
        ok = _submit(srv, data)
        assert ok.status == "completed", (data[-8:], ok.errors)
        assert ok.request_counts is not None and ok.request_counts.completed == 3


def test_error_list_is_capped(make_server: Callable[..., ServerHandle]) -> None:
    srv = make_server(limits=Limits(max_errors=5))
    lines = [_ok("ok0")] + [_ok(f"bad{i}", method="GET") for i in range(12)] + [_ok("ok1")]
    b = _submit(srv, b"\n".join(lines))
    errors = _assert_failed(srv, b)
    assert len(errors) == 6
    assert [(e["code"], e["line"]) for e in errors[:5]] == [
        ("invalid_method", n) for n in range(2, 7)
    ]
    assert errors[5] == {
        "code": "too_many_errors",
        "message": "... and 7 more errors not shown.",
        "param": None,
        "line": None,
    }


def test_error_list_cap_counts_duplicates(make_server: Callable[..., ServerHandle]) -> None:
    srv = make_server(limits=Limits(max_errors=2))
    b = _submit(srv, b"\n".join([_ok("a")] * 6))
    errors = _assert_failed(srv, b)
    assert [(e["code"], e["line"]) for e in errors[:2]] == [
        ("duplicate_custom_id", 2), ("duplicate_custom_id", 3),
    ]  # fmt: skip
    assert errors[2]["code"] == "too_many_errors"
    assert errors[2]["message"] == "... and 3 more errors not shown."
    assert len(errors) == 3


# -- odd but valid files -------------------------------------------------------------------------


VALID: list[tuple[str, bytes]] = [
    ("bom_crlf", b"\xef\xbb\xbf" + b"\r\n".join(_ok(f"v{i}") for i in range(4)) + b"\r\n"),
    ("no_trailing_newline", b"\n".join(_ok(f"v{i}") for i in range(4))),
    ("trailing_blank_lines", b"\n".join(_ok(f"v{i}") for i in range(4)) + b"\n\n\n"),
    ("bom_no_newline", b"\xef\xbb\xbf" + b"\n".join(_ok(f"v{i}") for i in range(4))),
    ("crlf_trailing_blank", b"\r\n".join(_ok(f"v{i}") for i in range(4)) + b"\r\n\r\n  \r\n"),
    ("unicode_content", b"\n".join(
        _enc(_line(f"v{i}", body=_body(messages=[{"role": "user", "content": "héllo ✓ 日本"}])))
        for i in range(4)
    )),
]  # fmt: skip


@pytest.mark.parametrize("data", [v[1] for v in VALID], ids=[v[0] for v in VALID])
def test_odd_but_valid_files_run(shared: ServerHandle, data: bytes) -> None:
    b = _submit(shared, data)
    assert b.status == "completed", b.errors
    assert b.errors is None
    assert b.request_counts is not None
    assert b.request_counts.model_dump() == {"total": 4, "completed": 4, "failed": 0}
    assert b.output_file_id is not None
    out = [json.loads(x) for x in shared.openai().files.content(b.output_file_id).text.splitlines()]
    assert [o["custom_id"] for o in out] == [f"v{i}" for i in range(4)]
    assert shared.store.count_rows(b.id) == {"succeeded": 4}


def test_long_custom_id_limit(shared: ServerHandle) -> None:
    ok = _submit(shared, _ok("x" * 512))
    assert ok.status == "completed"
    bad = _submit(shared, _ok("x" * 513))
    errors = _assert_failed(shared, bad)
    assert [(e["code"], e["line"], e["param"]) for e in errors] == [
        ("invalid_request", 1, "custom_id")
    ]


def test_upload_then_batch_with_deleted_input_file(shared: ServerHandle) -> None:
    client = shared.openai()
    fid = client.files.create(file=("x.jsonl", _ok("a")), purpose="batch").id
    client.files.delete(fid)
    with pytest.raises(openai.BadRequestError) as ei:
        client.batches.create(input_file_id=fid, endpoint=CHAT, completion_window="24h")
    assert ei.value.param == "input_file_id"
