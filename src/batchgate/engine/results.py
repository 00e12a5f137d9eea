"""Turn one upstream Attempt into the row's next state: success, retry at t, or final error."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from batchgate.domain.states import RowState
from batchgate.engine.retry import GiveUp, Outcome, Retry, RetryPolicy, decide, parse_retry_after
from batchgate.providers.base import Attempt
from batchgate.providers.translate import (
    TranslationError,
    anthropic_error_from_openai,
    chat_reply_to_message,
    messages_reply_to_chat,
    openai_error_from_anthropic,
)
from batchgate.storage.types import LeasedRow, RowResult

_rng = random.Random()


def usage_of(doc: Any) -> tuple[int, int, int, int]:
    """(input, output, cached, reasoning) tokens from a Chat/Completions/Embeddings/Responses
    reply; zeros when the upstream sent no usage."""
    usage = doc.get("usage") if isinstance(doc, dict) else None
    if not isinstance(usage, dict):
        return 0, 0, 0, 0
    if "cache_read_input_tokens" in usage or doc.get("type") == "message":
        return _anthropic_usage(usage)
    if "input_tokens" in usage:  # Responses API shape
        inp, out = usage.get("input_tokens"), usage.get("output_tokens")
        cached = (usage.get("input_tokens_details") or {}).get("cached_tokens")
        reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens")
    else:
        inp, out = usage.get("prompt_tokens"), usage.get("completion_tokens")
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    return _int(inp), _int(out), _int(cached), _int(reasoning)


def _anthropic_usage(usage: dict[str, Any]) -> tuple[int, int, int, int]:
    """Anthropic counts cache reads and writes apart from input_tokens; we count all input."""
    cached = _int(usage.get("cache_read_input_tokens"))
    written = _int(usage.get("cache_creation_input_tokens"))
    return (
        _int(usage.get("input_tokens")) + cached + written,
        _int(usage.get("output_tokens")),
        cached,
        0,
    )


def _int(v: Any) -> int:
    return v if isinstance(v, int) and v > 0 else 0


def _error_body(attempt: Attempt) -> bytes:
    """The upstream's error answer as one compact JSON object (wrapped if it was not one)."""
    try:
        doc = orjson.loads(attempt.body)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        text = attempt.body[:2000].decode("utf-8", "replace")
        doc = {"error": {"message": text, "type": "upstream_error", "param": None, "code": None}}
    return orjson.dumps(doc)


Converter = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Converters:
    """How an upstream's answers become the batch's dialect (None: already the same)."""

    reply: Converter | None = None
    error: Callable[[int, dict[str, Any] | None], dict[str, Any]] | None = None


SAME = Converters()


def converters(endpoint: str, upstream_kind: str) -> Converters:
    """Translation needed between a batch's endpoint and the upstream kind that served it."""
    wants_messages = endpoint == "/v1/messages"
    if wants_messages and upstream_kind != "anthropic":
        return Converters(lambda d: chat_reply_to_message(d), anthropic_error_from_openai)
    if not wants_messages and upstream_kind == "anthropic":
        return Converters(lambda d: messages_reply_to_chat(d), openai_error_from_anthropic)
    return SAME


def _error_code(attempt: Attempt) -> str | None:
    """The upstream's own error code in a 429 answer (``insufficient_quota`` is final)."""
    if attempt.status != 429 or b"insufficient_quota" not in attempt.body:
        return None
    try:
        error = orjson.loads(attempt.body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    code = error.get("code") or error.get("type") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def to_result(
    row: LeasedRow,
    attempt: Attempt,
    policy: RetryPolicy,
    convert: Converters = SAME,
    *,
    held: bool = False,
) -> RowResult:
    """Decide what ``attempt`` means for ``row`` (the pure core of the worker's record step);
    answers are stored in the batch's dialect, translated by ``convert`` where needed.
    ``held``: the lane's circuit is open (an outage's failure is retried uncharged)."""
    doc: Any = None
    kind = attempt.kind
    if attempt.status is not None and 200 <= attempt.status < 300:
        try:
            doc = orjson.loads(attempt.body)
        except orjson.JSONDecodeError:
            kind = "malformed"
        if not isinstance(doc, dict):
            kind = "malformed"
    retry_after = parse_retry_after(attempt.retry_after) if attempt.retry_after else None
    outcome = Outcome(attempt.status, kind, retry_after, attempt.message, _error_code(attempt))
    decision = decide(outcome, row.attempts, policy, _rng, held=held)
    base = RowResult(row.batch_id, row.line, row.lease_token, RowState.FAILED.value)
    if decision is None and convert.reply is not None:
        try:
            doc = convert.reply(doc)
        except TranslationError as exc:
            base.error_code, base.error_message = exc.code, f"Untranslatable reply: {exc.message}"
            return base
        attempt.body = orjson.dumps(doc)
    if decision is None:
        body = attempt.body if b"\n" not in attempt.body else orjson.dumps(doc)
        inp, out, cached, reasoning = usage_of(doc)
        base.state, base.status_code, base.response = RowState.SUCCEEDED.value, attempt.status, body
        base.request_id = attempt.request_id
        base.input_tokens, base.output_tokens = inp, out
        base.cached_tokens, base.reasoning_tokens = cached, reasoning
        return base
    if isinstance(decision, Retry):
        base.state = RowState.QUEUED.value
        base.next_attempt_at = time.time() + decision.delay
        base.status_code, base.error_code = attempt.status, "retrying"
        base.error_message = decision.reason
        base.charged = decision.charged
        return base
    return _give_up(base, attempt, kind, decision, convert)


def _give_up(
    base: RowResult, attempt: Attempt, kind: str, decision: GiveUp, convert: Converters
) -> RowResult:
    if attempt.status is not None and kind == "http":
        body = _error_body(attempt)
        if convert.error is not None:
            body = orjson.dumps(convert.error(attempt.status, orjson.loads(body)))
        base.status_code, base.response = attempt.status, body
        base.request_id = attempt.request_id
    base.error_code, base.error_message = decision.code, decision.message
    return base
