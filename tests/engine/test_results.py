"""What one upstream attempt means for its row: a table of attempts → row results."""

from __future__ import annotations

import time

import orjson
import pytest

from batchgate.engine.results import to_result, usage_of
from batchgate.engine.retry import RetryPolicy
from batchgate.providers.base import Attempt
from batchgate.storage.types import LeasedRow

POLICY = RetryPolicy(max_attempts=3, base_delay=10.0, max_delay=10.0, jitter=0.0)
CHAT = b'{"id":"c","usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}'


def _row(attempts: int = 1) -> LeasedRow:
    return LeasedRow("batch_1", 4, "cid", "up", b"{}", 10, attempts, "tok")


@pytest.mark.parametrize(
    ("attempt", "attempts", "state", "code", "status"),
    [
        (Attempt(200, CHAT), 1, "succeeded", None, 200),
        (Attempt(400, b'{"error":{"message":"bad"}}'), 1, "failed", "upstream_error", 400),
        (Attempt(404, b"not json at all"), 1, "failed", "upstream_error", 404),
        (Attempt(429, b"{}"), 1, "queued", "retrying", 429),
        (Attempt(429, b"{}"), 3, "queued", "retrying", 429),  # rate limits never run out
        (
            Attempt(429, b'{"error": {"code": "insufficient_quota"}}'),
            1,
            "failed",
            "upstream_error",
            429,
        ),  # out of quota: waiting does not help
        (Attempt(500, b"{}"), 2, "queued", "retrying", 500),
        (Attempt(529, b"{}"), 1, "queued", "retrying", 529),
        (Attempt(None, kind="timeout"), 1, "queued", "retrying", None),
        (Attempt(None, kind="timeout"), 3, "failed", "request_timeout", None),
        (Attempt(None, kind="connect"), 3, "failed", "upstream_unreachable", None),
        (Attempt(200, b'{"id": "trunc'), 1, "queued", "retrying", 200),
        (Attempt(200, b'{"id": "trunc'), 3, "failed", "malformed_response", None),
        (Attempt(200, b"[1, 2]"), 3, "failed", "malformed_response", None),
    ],
)
def test_attempt_to_row_state(
    attempt: Attempt, attempts: int, state: str, code: str | None, status: int | None
) -> None:
    r = to_result(_row(attempts), attempt, POLICY)
    assert (r.state, r.error_code, r.status_code) == (state, code, status)
    # only a real failure is charged: a retried 429 / 529 gives its attempt back
    assert r.charged == (state != "queued" or attempt.status not in (429, 529))


def test_a_held_outage_is_retried_uncharged_at_once() -> None:
    for attempt in (Attempt(None, kind="connect"), Attempt(None, kind="timeout"), Attempt(502)):
        r = to_result(_row(3), attempt, POLICY, held=True)
        assert (r.state, r.error_code, r.charged) == ("queued", "retrying", False)
        assert r.next_attempt_at <= time.time()
        assert to_result(_row(3), attempt, POLICY).state == "failed"  # closed: charged
    assert (r.batch_id, r.line, r.lease_token) == ("batch_1", 4, "tok")


def test_retry_after_header_comes_before_backoff() -> None:
    before = time.time()
    r = to_result(_row(), Attempt(429, b"{}", retry_after={"retry-after": "2"}), POLICY)
    assert before + 1.9 < r.next_attempt_at < time.time() + 2.1
    r = to_result(_row(), Attempt(503, b"{}"), POLICY)
    assert r.next_attempt_at >= before + 9.9  # the policy's 10 s backoff


def test_an_upstream_error_body_is_kept_as_one_json_object() -> None:
    r = to_result(_row(), Attempt(404, b"<html>\nnope\n</html>"), POLICY)
    assert r.response is not None and b"\n" not in r.response
    assert orjson.loads(r.response)["error"]["message"] == "<html>\nnope\n</html>"


def test_a_pretty_printed_success_is_compacted_for_jsonl() -> None:
    pretty = orjson.dumps(orjson.loads(CHAT), option=orjson.OPT_INDENT_2)
    r = to_result(_row(), Attempt(200, pretty), POLICY)
    assert r.response is not None and b"\n" not in r.response
    assert orjson.loads(r.response) == orjson.loads(CHAT)
    assert (r.input_tokens, r.output_tokens) == (5, 7)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}, (3, 4, 0, 0)),
        (
            {"usage": {"prompt_tokens": 9, "completion_tokens": 2,
                       "prompt_tokens_details": {"cached_tokens": 5},
                       "completion_tokens_details": {"reasoning_tokens": 1}}},
            (9, 2, 5, 1),
        ),
        (
            {"usage": {"input_tokens": 6, "output_tokens": 8,
                       "input_tokens_details": {"cached_tokens": 2},
                       "output_tokens_details": {"reasoning_tokens": 3}}},
            (6, 8, 2, 3),
        ),
        ({"usage": {"prompt_tokens": 4, "total_tokens": 4}}, (4, 0, 0, 0)),  # embeddings
        ({"no": "usage"}, (0, 0, 0, 0)),
        ({"usage": {"prompt_tokens": "x", "completion_tokens": -1}}, (0, 0, 0, 0)),
    ],
)  # fmt: skip
def test_usage_of_every_reply_shape(doc: dict[str, object], expected: tuple[int, ...]) -> None:
    assert usage_of(doc) == expected
