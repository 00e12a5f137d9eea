"""results_stream against a scripted server (httpx.MockTransport): pages, blank lines, CRLF,
a last line without newline, bad JSON / bad UTF-8 / non-objects in the middle, bodies cut
into tiny chunks; for Client and AsyncClient."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from batchgate.client import (
    APIResponseError,
    BadLine,
    NotFoundError,
    ResultDecodeError,
)


def ok_line(cid: str) -> bytes:
    response = {"status_code": 200, "request_id": f"req-{cid}", "body": {"id": cid}}
    line = {"id": f"batch_req_{cid}", "custom_id": cid, "response": response, "error": None}
    return json.dumps(line).encode()


class Tiny(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body sent three bytes at a time, so lines straddle chunks."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        for i in range(0, len(self.data), 3):
            yield self.data[i : i + 3]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self:
            yield chunk


# after -> (body, next_after, has_more); line numbers below count across both pages
PAGES: dict[int, tuple[bytes, int, bool]] = {
    0: (
        ok_line("a") + b"\r\n"  # 1 (CRLF)
        + b"\n"  # 2 blank
        + ok_line("b") + b"\n"  # 3
        + b'{"custom_id": "c", oops\n'  # 4 bad JSON
        + b"[1, 2]\n"  # 5 not an object
        + ok_line("d"),  # 6, no final newline: the page ends
        4, True,
    ),
    4: (
        b'{"custom_id": "\xff\xfe"}\n'  # 7 bad UTF-8
        + b'{"id": "no-custom-id"}\n'  # 8 no custom_id
        + b"   \r\n"  # 9 blank with CRLF
        + ok_line("e") + b"\n",  # 10
        9, False,
    ),
}  # fmt: skip
GOOD = ["a", "b", "d", "e"]
BAD = [(4, "not JSON"), (5, "not a JSON object"), (7, "not UTF-8"), (8, "custom_id")]


def handler(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/missing/results"):
        body = {"error": {"message": "No batch found with id 'missing'.", "type": "x"}}
        return httpx.Response(404, json=body)
    after = int(request.url.params["after"])
    assert request.url.params["limit"] == "7"
    body, next_after, more = PAGES[after]
    headers = {"x-batchgate-next-after": str(next_after), "x-batchgate-has-more": str(more)}
    return httpx.Response(200, headers=headers, stream=Tiny(body))


def test_every_good_line_arrives_and_bad_lines_raise_at_the_end(connect: Any) -> None:
    client = connect("http://mock", transport=httpx.MockTransport(handler))
    got: list[str] = []
    with pytest.raises(ResultDecodeError) as err:
        for result in client.batches.results_stream("batch_1", page_size=7):
            got.append(result.custom_id)
    assert got == GOOD  # the lines after each bad one still came, all before the raise
    bad = err.value.bad_lines
    assert [b.number for b in bad] == [n for n, _ in BAD]
    assert all(why in b.reason for b, (_, why) in zip(bad, BAD, strict=True)), bad
    assert bad[0].raw == b'{"custom_id": "c", oops'
    assert bad[2].raw == b'{"custom_id": "\xff\xfe"}'
    assert "4 result line(s)" in str(err.value)


def test_on_bad_line_gets_each_bad_line_and_nothing_raises(connect: Any) -> None:
    client = connect("http://mock", transport=httpx.MockTransport(handler))
    bad: list[BadLine] = []
    results = client.batches.results("batch_1", page_size=7, on_bad_line=bad.append)
    assert [r.custom_id for r in results] == GOOD
    assert [r.request_id for r in results] == [f"req-{c}" for c in GOOD]
    assert [b.number for b in bad] == [n for n, _ in BAD]


def test_the_anthropic_dialect_pages_the_same_way(connect: Any) -> None:
    seen: list[str] = []

    def messages(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url.path}?{request.url.query.decode()}")
        after = int(request.url.params["after"])
        lines = [{"custom_id": f"m{after + i}", "result": {"type": "succeeded"}} for i in (1, 2)]
        lines[1]["result"] = {
            "type": "errored",
            "error": {"type": "error", "error": {"type": "invalid_request_error", "message": "no"}},
        }
        body = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
        more = "true" if after < 4 else "false"
        headers = {"x-batchgate-next-after": str(after + 2), "x-batchgate-has-more": more}
        return httpx.Response(200, headers=headers, content=body)

    client = connect("http://mock", transport=httpx.MockTransport(messages))
    results = client.messages.batches.results("msgbatch_1", page_size=2)
    assert [r.custom_id for r in results] == ["m1", "m2", "m3", "m4", "m5", "m6"]
    assert [r.ok for r in results] == [True, False] * 3
    assert results[1].error is not None and results[1].error.code == "invalid_request_error"
    assert seen == [f"/v1/messages/batches/msgbatch_1/results?after={a}&limit=2" for a in (0, 2, 4)]


def test_an_error_answer_on_a_page_is_an_api_error(connect: Any) -> None:
    client = connect("http://mock", transport=httpx.MockTransport(handler))
    with pytest.raises(NotFoundError, match="No batch found with id 'missing'"):
        client.batches.results("missing", page_size=7)


@pytest.mark.parametrize("next_after", ["", "0", "x"])
def test_has_more_without_a_forward_cursor_stops_with_an_error(
    connect: Any, next_after: str
) -> None:
    def stuck(request: httpx.Request) -> httpx.Response:
        headers = {"x-batchgate-next-after": next_after, "x-batchgate-has-more": "true"}
        return httpx.Response(200, headers=headers, content=ok_line("a"))

    client = connect("http://mock", transport=httpx.MockTransport(stuck))
    with pytest.raises(APIResponseError, match="more results"):
        client.batches.results("b")


def test_no_paging_headers_means_one_page(connect: Any) -> None:
    def plain(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=ok_line("a") + b"\n" + ok_line("b"))

    client = connect("http://mock", transport=httpx.MockTransport(plain))
    assert [r.custom_id for r in client.batches.results("b")] == ["a", "b"]


def test_page_size_is_checked(connect: Any) -> None:
    client = connect("http://mock", transport=httpx.MockTransport(handler))
    with pytest.raises(ValueError, match="page_size"):
        client.batches.results("b", page_size=0)
