"""Streaming JSONL reading and OpenAI batch-line validation (batchgate.domain.jsonl)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from batchgate.domain.jsonl import (
    ErrorCollector,
    FileTooLarge,
    LineError,
    ParsedLine,
    estimate_tokens,
    iter_lines,
    parse_batch_line,
)
from batchgate.errors import InvalidRequest

CHAT = "/v1/chat/completions"


def lines_of(data: bytes, **kwargs: Any) -> list[tuple[int, bytes]]:
    return list(iter_lines(io.BytesIO(data), **kwargs))


# --- iter_lines ----------------------------------------------------------------------------------

READ_CASES = [
    ("lf", b"a\nb\n", [(1, b"a"), (2, b"b")]),
    ("crlf", b"a\r\nb\r\n", [(1, b"a"), (2, b"b")]),
    ("mixed endings", b"a\r\nb\nc\r\n", [(1, b"a"), (2, b"b"), (3, b"c")]),
    ("no final newline", b"a\nb", [(1, b"a"), (2, b"b")]),
    ("no final newline crlf", b"a\r\nb\r", [(1, b"a"), (2, b"b")]),
    ("bom stripped", b"\xef\xbb\xbfa\nb\n", [(1, b"a"), (2, b"b")]),
    ("bom only at start", b"a\n\xef\xbb\xbfb\n", [(1, b"a"), (2, b"\xef\xbb\xbfb")]),
    ("blank middle kept", b"a\n\n  \nb\n", [(1, b"a"), (2, b""), (3, b"  "), (4, b"b")]),
    ("blank crlf middle", b"a\r\n\r\nb\r\n", [(1, b"a"), (2, b""), (3, b"b")]),
    ("empty", b"", []),
    ("bom only", b"\xef\xbb\xbf", []),
    ("single newline", b"\n", [(1, b"")]),
    ("cr kept inside a line", b"a\rb\n", [(1, b"a\rb")]),
]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 5, 7, 1 << 20])
@pytest.mark.parametrize(("name", "data", "expected"), READ_CASES, ids=[c[0] for c in READ_CASES])
def test_iter_lines(
    name: str, data: bytes, expected: list[tuple[int, bytes]], chunk_size: int
) -> None:
    assert lines_of(data, chunk_size=chunk_size) == expected


def test_chunk_boundary_inside_line_and_inside_crlf() -> None:
    data = b'{"x": "' + b"y" * 50 + b'"}\r\n' + b"second\r\nthird"
    expected = [(1, data.split(b"\r\n")[0]), (2, b"second"), (3, b"third")]
    # every possible split point: inside the long line, between \r and \n, inside the BOM
    for chunk_size in range(1, len(data) + 2):
        assert lines_of(data, chunk_size=chunk_size) == expected, chunk_size
        assert lines_of(b"\xef\xbb\xbf" + data, chunk_size=chunk_size) == expected, chunk_size


class ShortReads(io.RawIOBase):
    """A stream whose read() returns fewer bytes than asked, like a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        piece, self._data = self._data[:2], self._data[2:]
        return piece


def test_short_reads() -> None:
    stream = ShortReads(b"\xef\xbb\xbfab\r\ncd\r\n")
    assert list(iter_lines(stream, chunk_size=64)) == [(1, b"ab"), (2, b"cd")]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "max_bytes", "too_large"),
    [
        (b"a\nb\n", 4, False),
        (b"a\nb\n", 3, True),
        (b"a\nb\n", 100, False),
        (b"", 0, False),
        (b"x", 0, True),
    ],
)
def test_max_bytes(data: bytes, max_bytes: int, too_large: bool) -> None:
    if too_large:
        with pytest.raises(FileTooLarge) as info:
            lines_of(data, max_bytes=max_bytes, chunk_size=2)
        assert info.value.code == "file_too_large"
        assert info.value.max_bytes == max_bytes
        assert str(max_bytes) in info.value.message
        assert isinstance(info.value, InvalidRequest)
    else:
        assert len(lines_of(data, max_bytes=max_bytes, chunk_size=2)) == data.count(b"\n")


def test_max_bytes_stops_reading_early() -> None:
    class Endless(io.RawIOBase):
        reads = 0

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            self.reads += 1
            return b"x\n" * (size // 2)

    stream = Endless()
    with pytest.raises(FileTooLarge):
        for _ in iter_lines(stream, chunk_size=1024, max_bytes=10_000):  # type: ignore[arg-type]
            pass
    assert stream.reads <= 11


def test_invalid_chunk_size() -> None:
    with pytest.raises(ValueError):
        lines_of(b"a", chunk_size=0)


def test_large_stream_is_streamed() -> None:
    count = 200_000
    line = b'{"custom_id":"r","method":"POST","url":"/v1/chat/completions","body":{}}\n'

    class Generated(io.RawIOBase):
        """Produces the file on demand, so the test itself never holds it whole."""

        def __init__(self) -> None:
            self.left = count
            self.largest_read = 0

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            n = min(self.left, max(1, size // len(line)))
            self.left -= n
            self.largest_read = max(self.largest_read, size)
            return line * n

    stream = Generated()
    started = time.perf_counter()
    seen = 0
    last = 0
    for number, raw in iter_lines(stream, chunk_size=64 * 1024):  # type: ignore[arg-type]
        seen += 1
        last = number
        if number % 997 == 0:  # spot-check without slowing the loop
            assert raw == line[:-1]
    assert seen == count and last == count
    assert stream.largest_read == 64 * 1024
    assert time.perf_counter() - started < 2.0


# --- parse_batch_line ----------------------------------------------------------------------------


def request(body: Any = None, **fields: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "custom_id": "req-1",
        "method": "POST",
        "url": CHAT,
        "body": body
        if body is not None
        else {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    }
    line.update(fields)
    return line


def encode(obj: Any) -> bytes:
    return orjson.dumps(obj)


def without(key: str) -> bytes:
    obj = request()
    del obj[key]
    return encode(obj)


def body_without(key: str, endpoint_body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in endpoint_body.items() if k != key}


CHAT_BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

# (id, raw line, endpoint, expected code, expected param, fragment the message must contain)
ERROR_CASES: list[tuple[str, bytes, str, str, str | None, str]] = [
    ("blank", b"", CHAT, "blank_line", None, "blank"),
    ("whitespace", b"  \t ", CHAT, "blank_line", None, "blank"),
    ("bad utf8", b'{"custom_id": "\xff"}', CHAT, "invalid_encoding", None, "offset 15"),
    ("not json", b"{nope", CHAT, "invalid_json_line", None, "not parseable as valid JSON"),
    ("truncated", encode(request())[:-1], CHAT, "invalid_json_line", None, "valid JSON"),
    ("array", b"[1, 2]", CHAT, "invalid_request", None, "expected a JSON object, got array"),
    ("string", b'"x"', CHAT, "invalid_request", None, "got string"),
    ("null", b"null", CHAT, "invalid_request", None, "got null"),
    (
        "no custom_id",
        without("custom_id"),
        CHAT,
        "missing_required_parameter",
        "custom_id",
        "'custom_id' is required.",
    ),
    (
        "no method",
        without("method"),
        CHAT,
        "missing_required_parameter",
        "method",
        "'method' is required",
    ),
    ("no url", without("url"), CHAT, "missing_required_parameter", "url", "'url' is required"),
    ("no body", without("body"), CHAT, "missing_required_parameter", "body", "'body' is required"),
    (
        "custom_id int",
        encode(request(custom_id=5)),
        CHAT,
        "invalid_request",
        "custom_id",
        "got number",
    ),
    (
        "custom_id empty",
        encode(request(custom_id="")),
        CHAT,
        "invalid_request",
        "custom_id",
        "non-empty",
    ),
    (
        "custom_id long",
        encode(request(custom_id="x" * 513)),
        CHAT,
        "invalid_request",
        "custom_id",
        "513",
    ),
    ("method GET", encode(request(method="GET")), CHAT, "invalid_method", "method", "'GET'"),
    ("method lower", encode(request(method="post")), CHAT, "invalid_method", "method", "'POST'"),
    (
        "url mismatch",
        encode(request(url="/v1/embeddings")),
        CHAT,
        "invalid_url",
        "url",
        "'/v1/embeddings'",
    ),
    ("body list", encode(request(body=[1])), CHAT, "invalid_request", "body", "got array"),
    (
        "body string",
        encode(request(body="x")),
        CHAT,
        "invalid_request",
        "body",
        "'body' must be an object",
    ),
    (
        "stream",
        encode(request(body={**CHAT_BODY, "stream": True})),
        CHAT,
        "streaming_unsupported",
        "body.stream",
        "stream",
    ),
    (
        "no model",
        encode(request(body=body_without("model", CHAT_BODY))),
        CHAT,
        "missing_required_parameter",
        "body.model",
        "'model' is required",
    ),
    (
        "model int",
        encode(request(body={**CHAT_BODY, "model": 3})),
        CHAT,
        "invalid_request",
        "body.model",
        "got number",
    ),
    (
        "model empty",
        encode(request(body={**CHAT_BODY, "model": ""})),
        CHAT,
        "invalid_request",
        "body.model",
        "non-empty",
    ),
    (
        "no messages",
        encode(request(body={"model": "m"})),
        CHAT,
        "missing_required_parameter",
        "body.messages",
        "'messages' is required",
    ),
    (
        "empty messages",
        encode(request(body={"model": "m", "messages": []})),
        CHAT,
        "invalid_request",
        "body.messages",
        "non-empty array",
    ),
    (
        "messages dict",
        encode(request(body={"model": "m", "messages": {}})),
        CHAT,
        "invalid_request",
        "body.messages",
        "got object",
    ),
    (
        "no prompt",
        encode(request(url="/v1/completions", body={"model": "m"})),
        "/v1/completions",
        "missing_required_parameter",
        "body.prompt",
        "'prompt'",
    ),
    (
        "prompt int",
        encode(request(url="/v1/completions", body={"model": "m", "prompt": 1})),
        "/v1/completions",
        "invalid_request",
        "body.prompt",
        "got number",
    ),
    (
        "no input emb",
        encode(request(url="/v1/embeddings", body={"model": "m"})),
        "/v1/embeddings",
        "missing_required_parameter",
        "body.input",
        "'input'",
    ),
    (
        "empty input emb",
        encode(request(url="/v1/embeddings", body={"model": "m", "input": ""})),
        "/v1/embeddings",
        "invalid_request",
        "body.input",
        "non-empty",
    ),
    (
        "no input resp",
        encode(request(url="/v1/responses", body={"model": "m"})),
        "/v1/responses",
        "missing_required_parameter",
        "body.input",
        "'input'",
    ),
]


@pytest.mark.parametrize(
    ("name", "raw", "endpoint", "code", "param", "fragment"),
    ERROR_CASES,
    ids=[c[0] for c in ERROR_CASES],
)
def test_parse_errors(
    name: str, raw: bytes, endpoint: str, code: str, param: str | None, fragment: str
) -> None:
    result = parse_batch_line(raw, 7, endpoint)
    assert isinstance(result, LineError), result
    assert (result.code, result.param, result.line) == (code, param, 7)
    assert result.message.startswith("Line 7:"), result.message
    assert fragment in result.message, result.message
    assert result.to_dict() == {"code": code, "message": result.message, "param": param, "line": 7}


def test_invalid_url_names_both() -> None:
    result = parse_batch_line(encode(request(url="/v1/embeddings")), 2, CHAT)
    assert isinstance(result, LineError)
    assert "/v1/embeddings" in result.message and CHAT in result.message


def test_stream_false_is_fine() -> None:
    assert isinstance(
        parse_batch_line(encode(request(body={**CHAT_BODY, "stream": False})), 1, CHAT), ParsedLine
    )


VALID_CASES = [
    (CHAT, CHAT_BODY),
    ("/v1/completions", {"model": "m", "prompt": "once upon"}),
    ("/v1/completions", {"model": "m", "prompt": [1, 2, 3]}),
    ("/v1/embeddings", {"model": "e", "input": ["a", "b"]}),
    ("/v1/responses", {"model": "m", "input": "hello", "instructions": "be brief"}),
    ("/v1/unknown", {"model": "m"}),
]


@pytest.mark.parametrize(("endpoint", "body"), VALID_CASES)
def test_parse_valid(endpoint: str, body: dict[str, Any]) -> None:
    raw = encode({"custom_id": "c-9", "method": "POST", "url": endpoint, "body": body})
    result = parse_batch_line(b"  " + raw + b"  ", 3, endpoint)
    assert isinstance(result, ParsedLine), result
    assert result.line == 3 and result.custom_id == "c-9"
    assert result.body == body
    assert result.body_bytes == orjson.dumps(body)
    assert result.model == body["model"]
    assert result.est_tokens == estimate_tokens(body, endpoint) >= 1


def test_body_bytes_are_compact() -> None:
    raw = b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",'
    raw += b' "body": {"model" : "m", "messages" : [ {"role": "user", "content": "hi"} ] }}'
    result = parse_batch_line(raw, 1, CHAT)
    assert isinstance(result, ParsedLine)
    assert result.body_bytes == b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'


def test_custom_id_of_512_chars_is_accepted() -> None:
    assert isinstance(parse_batch_line(encode(request(custom_id="x" * 512)), 1, CHAT), ParsedLine)


# --- estimate_tokens -----------------------------------------------------------------------------

ESTIMATE_CASES: list[tuple[str, dict[str, Any], str, int]] = [
    # 8 chars -> 2, one message -> 4, default output 256
    (
        "chat default cap",
        {"messages": [{"role": "user", "content": "abcdefgh"}]},
        CHAT,
        2 + 4 + 256,
    ),
    ("chars round up", {"messages": [{"role": "user", "content": "abcdefghi"}]}, CHAT, 3 + 4 + 256),
    (
        "content parts and two messages",
        {
            "messages": [
                {"role": "system", "content": "abcd"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "abcd"},
                        {"type": "image_url", "image_url": {"url": "x" * 400}},
                    ],
                },
            ],
            "max_completion_tokens": 10,
        },
        CHAT,
        2 + 8 + 10,
    ),
    ("max_tokens", {"messages": [{"content": "abcd"}], "max_tokens": 7}, CHAT, 1 + 4 + 7),
    (
        "max_completion_tokens wins",
        {"messages": [{"content": "abcd"}], "max_completion_tokens": 3, "max_tokens": 99},
        CHAT,
        1 + 4 + 3,
    ),
    ("prompt string", {"prompt": "x" * 40, "max_tokens": 0}, "/v1/completions", 10),
    ("prompt token ids", {"prompt": [1, 2, 3, 4, 5], "max_tokens": 1}, "/v1/completions", 5 + 1),
    ("embeddings no output", {"input": ["abcd", "abcdefgh"]}, "/v1/embeddings", 3),
    ("embeddings token ids", {"input": [[1, 2], [3]]}, "/v1/embeddings", 3),
    (
        "responses",
        {"input": "x" * 8, "instructions": "y" * 8, "max_output_tokens": 5},
        "/v1/responses",
        4 + 5,
    ),
    (
        "responses items",
        {
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "abcd"}]}],
            "max_output_tokens": 0,
        },
        "/v1/responses",
        1 + 4,
    ),
    ("at least one", {"input": ""}, "/v1/embeddings", 1),
    ("bool cap ignored", {"prompt": "", "max_tokens": True}, "/v1/completions", 256),
]


@pytest.mark.parametrize(
    ("name", "body", "endpoint", "expected"), ESTIMATE_CASES, ids=[c[0] for c in ESTIMATE_CASES]
)
def test_estimate_tokens(name: str, body: dict[str, Any], endpoint: str, expected: int) -> None:
    assert estimate_tokens(body, endpoint) == expected


def test_estimate_is_fast() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello " * 50}] * 4}
    started = time.perf_counter()
    for _ in range(20_000):
        estimate_tokens(body, CHAT)
    assert time.perf_counter() - started < 1.0


# --- ErrorCollector ------------------------------------------------------------------------------


def errors(n: int) -> Iterator[LineError]:
    for i in range(1, n + 1):
        yield LineError("invalid_json_line", f"Line {i}: bad", i)


@pytest.mark.parametrize(("cap", "n"), [(3, 0), (3, 2), (3, 3), (3, 10), (100, 250)])
def test_error_collector(cap: int, n: int) -> None:
    collector = ErrorCollector(cap=cap)
    for err in errors(n):
        collector.add(err)
    out = collector.to_list()
    assert collector.count == n
    shown = min(cap, n)
    assert [e["line"] for e in out[:shown]] == list(range(1, shown + 1))
    if n > cap:
        assert len(out) == cap + 1
        assert out[-1] == {
            "code": "too_many_errors",
            "message": f"... and {n - cap} more errors not shown.",
            "param": None,
            "line": None,
        }
    else:
        assert len(out) == n


def test_error_collector_default_cap() -> None:
    collector = ErrorCollector()
    for err in errors(101):
        collector.add(err)
    assert len(collector.to_list()) == 101
    assert collector.to_list()[-1]["code"] == "too_many_errors"
