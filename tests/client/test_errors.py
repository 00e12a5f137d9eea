"""Error mapping: the server's own message and request id in the class its status maps to,
an unreachable server named, and wait_for giving up on a batch that never moves."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import pytest

from batchgate.client import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
    WaitTimeout,
)
from tests.client.conftest import FAST, chat, messages

# -- against the live server -------------------------------------------------------------------


def test_unknown_batch_is_not_found_in_the_servers_words(client: Any) -> None:
    with pytest.raises(NotFoundError) as err:
        client.batches.get("batch_nope")
    assert err.value.message == "No batch found with id 'batch_nope'."
    assert err.value.status_code == 404 and err.value.param == "batch_id"
    assert err.value.request_id and err.value.request_id.startswith("req_")
    assert isinstance(err.value.body, dict) and "error" in err.value.body
    assert str(err.value) == "HTTP 404: No batch found with id 'batch_nope'."

    with pytest.raises(NotFoundError) as err:
        client.messages.batches.get("msgbatch_nope")  # the Anthropic envelope
    assert err.value.message == "No batch found with id 'msgbatch_nope'."
    assert err.value.type == "not_found_error" and err.value.request_id


def test_bad_requests_are_bad_request_errors(client: Any) -> None:
    with pytest.raises(BadRequestError) as err:
        client.batches.create(chat(1), completion_window="1 week")
    assert err.value.status_code == 400 and err.value.param == "completion_window"
    with pytest.raises(BadRequestError, match="file-x") as err:
        client.batches.create(input_file_id="file-x")
    with pytest.raises(BadRequestError, match=r"requests\.0\.custom_id"):
        client.messages.batches.create([{"custom_id": "not ok!", "params": {}}])


def test_deleting_a_running_batch_and_cancelling_an_ended_one(connect: Any, make_server: Any):
    client = connect(make_server(worker=False).url)
    batch = client.batches.create(chat(1))
    with pytest.raises(BadRequestError, match="still being processed"):
        client.batches.delete(batch.id)
    mbatch = client.messages.batches.create(messages(1))
    with pytest.raises(BadRequestError):
        client.messages.batches.delete(mbatch.id)


def test_cancelling_a_completed_batch_is_a_conflict(client: Any) -> None:
    batch = client.batches.wait_for(client.batches.create(chat(1)).id, **FAST)
    with pytest.raises(ConflictError) as err:
        client.batches.cancel(batch.id)
    assert err.value.status_code == 409


def test_a_server_that_is_not_listening_is_named(connect: Any) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    client = connect(url + "/v1")
    with pytest.raises(APIConnectionError) as err:
        client.batches.get("batch_1")
    assert err.value.url == url and url in str(err.value)
    assert "GET /v1/batches/batch_1" in str(err.value)
    with pytest.raises(APIConnectionError, match=url):
        list(client.batches.results_stream("batch_1"))


# -- wait_for gives up -------------------------------------------------------------------------


def test_wait_for_times_out_naming_the_batch(connect: Any, make_server: Any) -> None:
    client = connect(make_server(worker=False).url)  # no worker: the batch never moves
    for resource, batch in (
        (client.batches, client.batches.create(chat(2))),
        (client.messages.batches, client.messages.batches.create(messages(2))),
    ):
        polls: list[Any] = []
        start = time.monotonic()
        with pytest.raises(WaitTimeout) as err:
            resource.wait_for(batch.id, poll_interval=0.05, timeout=0.3, on_progress=polls.append)
        elapsed = time.monotonic() - start
        assert 0.3 <= err.value.waited <= elapsed < 2.0
        assert err.value.batch_id == batch.id and err.value.last.id == batch.id
        assert not err.value.last.ended and polls[-1] == err.value.last and len(polls) >= 3
        assert batch.id in str(err.value) and str(err.value.last.status) in str(err.value)
        assert f"0 of {err.value.last.counts.total} requests done" in str(err.value)


# -- the status table, against a scripted server -----------------------------------------------

TABLE = [
    (400, BadRequestError), (401, AuthenticationError), (403, PermissionDeniedError),
    (404, NotFoundError), (409, ConflictError), (413, PayloadTooLargeError),
    (422, UnprocessableEntityError), (429, RateLimitError), (500, InternalServerError),
    (503, InternalServerError), (529, InternalServerError), (418, APIStatusError),
    (402, APIStatusError),
]  # fmt: skip


@pytest.mark.parametrize(("status", "cls"), TABLE)
def test_status_codes_map_by_the_table(connect: Any, status: int, cls: type) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = {"type": "error", "error": {"type": "some_error", "message": f"nope {status}"}}
        return httpx.Response(status, json=body, headers={"request-id": "req_9"})

    client = connect("http://mock", transport=httpx.MockTransport(answer))
    with pytest.raises(APIStatusError) as err:
        client.messages.batches.get("x")
    assert type(err.value) is cls
    assert (err.value.message, err.value.request_id, err.value.type) == (
        f"nope {status}", "req_9", "some_error",
    )  # fmt: skip


def test_an_error_without_an_envelope_keeps_the_text(connect: Any) -> None:
    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="Bad Gateway from the proxy")

    client = connect("http://mock", transport=httpx.MockTransport(proxy))
    with pytest.raises(InternalServerError) as err:
        client.files.get("file-1")
    assert err.value.message == "Bad Gateway from the proxy" and err.value.request_id is None


def test_a_success_that_is_not_json_is_a_response_error(connect: Any) -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>login</html>")

    client = connect("http://mock", transport=httpx.MockTransport(html))
    with pytest.raises(APIResponseError, match="login"):
        client.batches.get("b")


def test_a_timeout_is_an_api_timeout_error(connect: Any) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = connect("http://mock", transport=httpx.MockTransport(slow))
    with pytest.raises(APITimeoutError) as err:
        client.files.list()
    assert isinstance(err.value, APIConnectionError) and err.value.url == "http://mock"
