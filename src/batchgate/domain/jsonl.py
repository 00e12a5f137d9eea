"""Streaming JSONL reading and validation of OpenAI batch input lines (wire spec §2.4, §2.6).

Pure domain code: reads a binary stream it is handed, never opens files or knows HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import orjson

from batchgate.errors import InvalidRequest

__all__ = [
    "MAX_CUSTOM_ID_LENGTH",
    "MAX_DEPTH",
    "MAX_ESTIMATE",
    "NUL",
    "ErrorCollector",
    "FileTooLarge",
    "LineError",
    "ParsedLine",
    "estimate_parts",
    "estimate_tokens",
    "iter_lines",
    "nested_too_deep",
    "parse_batch_line",
]

MAX_CUSTOM_ID_LENGTH = 512
# How deep a request may nest objects and arrays. The JSON parser takes 1,024 levels but the
# encoder only 254, and a line that parses but cannot be written back out would fail the same
# way on every try; 128 is far beyond any real request (a tool schema nests a dozen).
MAX_DEPTH = 128
# The most tokens one request's input, or its output, is estimated at: the two together fit the
# 32-bit column (a max_tokens of 2^63 is the upstream's to refuse, not a reason to fail a batch).
MAX_ESTIMATE = 2**30
NUL = "\x00"  # no text column of PostgreSQL can hold it: refused in ids and model names
_BOM = b"\xef\xbb\xbf"
_REQUIRED_FIELDS = ("custom_id", "method", "url", "body")
_EMBEDDINGS = "/v1/embeddings"
_DEFAULT_OUTPUT_TOKENS = 256
_OUTPUT_CAP_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
_TOKENS_PER_MESSAGE = 4


def nested_too_deep(raw: bytes, doc: object, limit: int = MAX_DEPTH) -> bool:
    """Whether ``doc`` (parsed from ``raw``) nests more than ``limit`` objects and arrays. A
    text with no more brackets than ``limit`` cannot, so most lines skip the walk."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    if not isinstance(doc, dict | list):
        return False
    stack: list[tuple[dict[Any, Any] | list[Any], int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def too_deep_message(where: str) -> str:
    return f"{where} is nested more than {MAX_DEPTH} levels deep; at most {MAX_DEPTH} are accepted."


class FileTooLarge(InvalidRequest):
    """The stream holds more bytes than the configured limit."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            f"The file is larger than the limit of {max_bytes} bytes.",
            code="file_too_large",
        )
        self.max_bytes = max_bytes


@dataclass(frozen=True, slots=True)
class LineError:
    """A located validation problem: a value to report, not an exception."""

    code: str
    message: str
    line: int | None
    param: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "param": self.param, "line": self.line}


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """A valid batch input line, with its body re-serialised compactly."""

    line: int
    custom_id: str
    body: dict[str, Any]
    body_bytes: bytes
    model: str | None
    est_tokens: int  # input estimate + output cap (what a TPM budget holds)
    est_output: int = 0  # of which the output cap (priced apart in a budget reservation)


@dataclass
class ErrorCollector:
    """Keeps the first ``cap`` errors and counts the rest."""

    cap: int = 100
    _errors: list[LineError] = field(default_factory=list, init=False, repr=False)
    _count: int = field(default=0, init=False, repr=False)

    def add(self, err: LineError) -> None:
        self._count += 1
        if len(self._errors) < self.cap:
            self._errors.append(err)

    def add_found(self, more: list[LineError], total: int) -> None:
        """Fold in ``total`` errors found after the line-by-line pass (duplicates, of which
        ``more`` are the first, in line order): the errors kept are the first ``cap`` of both
        by line, so one report names every kind of problem near the top of the file."""
        merged = sorted([*self._errors, *more], key=lambda e: (e.line is None, e.line or 0))
        self._errors = merged[: self.cap]
        self._count += total

    @property
    def count(self) -> int:
        return self._count

    def to_list(self) -> list[dict[str, object]]:
        out = [err.to_dict() for err in self._errors]
        hidden = self._count - len(self._errors)
        if hidden > 0:
            out.append(
                {
                    "code": "too_many_errors",
                    "message": f"... and {hidden} more errors not shown.",
                    "param": None,
                    "line": None,
                }
            )
        return out


# --- reading -------------------------------------------------------------------------------------


def _chunks(stream: BinaryIO, chunk_size: int, max_bytes: int | None) -> Iterator[bytes]:
    total = 0
    while chunk := stream.read(chunk_size):
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise FileTooLarge(max_bytes)
        yield chunk


def _without_bom(chunks: Iterator[bytes]) -> Iterator[bytes]:
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(_BOM):
            break
    yield head.removeprefix(_BOM)
    yield from chunks


def _strip_cr(raw: bytes) -> bytes:
    return raw[:-1] if raw.endswith(b"\r") else raw


def iter_lines(
    stream: BinaryIO, *, chunk_size: int = 1 << 20, max_bytes: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(1-based line number, line bytes without its terminator)``.

    Reads ``chunk_size`` bytes at a time, so memory is bounded by the longest line. Accepts
    ``\\n`` and ``\\r\\n``; strips a leading UTF-8 BOM; yields blank lines in the middle (the
    validator reports them) but not the empty remainder after a final newline.
    Raises FileTooLarge as soon as more than ``max_bytes`` bytes have been read.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    number = 0
    pending: list[bytes] = []  # pieces of a line that spans chunks; joined once, never quadratic
    for chunk in _without_bom(_chunks(stream, chunk_size, max_bytes)):
        parts = chunk.split(b"\n")
        if len(parts) == 1:
            if chunk:
                pending.append(chunk)
            continue
        pending.append(parts[0])
        number += 1
        yield number, _strip_cr(b"".join(pending))
        for part in parts[1:-1]:
            number += 1
            yield number, _strip_cr(part)
        pending = [parts[-1]] if parts[-1] else []
    if pending:
        yield number + 1, _strip_cr(b"".join(pending))


# --- validation ----------------------------------------------------------------------------------


_JSON_TYPE_NAMES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _type_name(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _undecodable(raw: bytes, line: int, reason: str) -> LineError:
    """Explain why ``orjson`` refused a line: blank, bad UTF-8 or bad JSON."""
    if not raw.strip():
        return LineError("blank_line", f"Line {line}: the line is blank; remove it.", line)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return LineError(
            "invalid_encoding",
            f"Line {line}: the line is not valid UTF-8 (invalid byte at offset {exc.start}).",
            line,
        )
    return LineError(
        "invalid_json_line",
        f"Line {line}: This line is not parseable as valid JSON. ({reason})",
        line,
    )


def _missing(line: int, param: str) -> LineError:
    name = param.rsplit(".", 1)[-1]
    return LineError(
        "missing_required_parameter", f"Line {line}: '{name}' is required.", line, param
    )


def _invalid(line: int, param: str, expected: str, value: object) -> LineError:
    return LineError(
        "invalid_request",
        f"Line {line}: '{param}' must be {expected}, got {_type_name(value)}.",
        line,
        param,
    )


def _check_envelope(obj: dict[str, Any], line: int, endpoint: str) -> LineError | None:
    for name in _REQUIRED_FIELDS:
        if name not in obj:
            return _missing(line, name)
    custom_id = obj["custom_id"]
    if isinstance(custom_id, str) and NUL in custom_id:
        return _nul(line, "custom_id")
    if not isinstance(custom_id, str) or not 0 < len(custom_id) <= MAX_CUSTOM_ID_LENGTH:
        expected = f"a non-empty string of at most {MAX_CUSTOM_ID_LENGTH} characters"
        if isinstance(custom_id, str):
            return LineError(
                "invalid_request",
                f"Line {line}: 'custom_id' must be {expected}, got {len(custom_id)} characters.",
                line,
                "custom_id",
            )
        return _invalid(line, "custom_id", expected, custom_id)
    if obj["method"] != "POST":
        return LineError(
            "invalid_method",
            f"Line {line}: 'method' must be 'POST', got {obj['method']!r}.",
            line,
            "method",
        )
    if obj["url"] != endpoint:
        return LineError(
            "invalid_url",
            f"Line {line}: 'url' is {obj['url']!r} but the batch endpoint is {endpoint!r}; "
            "every line must use the batch's endpoint.",
            line,
            "url",
        )
    if not isinstance(obj["body"], dict):
        return _invalid(line, "body", "an object", obj["body"])
    return None


def _is_text_or_list(value: object, *, non_empty: bool) -> bool:
    return isinstance(value, str | list) and (bool(value) or not non_empty)


def _check_messages(body: Mapping[str, Any], line: int) -> LineError | None:
    if "messages" not in body:
        return _missing(line, "body.messages")
    if not isinstance(body["messages"], list) or not body["messages"]:
        return _invalid(line, "body.messages", "a non-empty array", body["messages"])
    return None


def _needs_text(
    name: str, *, non_empty: bool
) -> Callable[[Mapping[str, Any], int], LineError | None]:
    param = f"body.{name}"
    expected = "a non-empty string or array" if non_empty else "a string or an array"

    def check(body: Mapping[str, Any], line: int) -> LineError | None:
        if name not in body:
            return _missing(line, param)
        if not _is_text_or_list(body[name], non_empty=non_empty):
            return _invalid(line, param, expected, body[name])
        return None

    return check


_ENDPOINT_CHECKS: dict[str, Callable[[Mapping[str, Any], int], LineError | None]] = {
    "/v1/chat/completions": _check_messages,
    "/v1/completions": _needs_text("prompt", non_empty=False),
    _EMBEDDINGS: _needs_text("input", non_empty=True),
    "/v1/responses": _needs_text("input", non_empty=False),
}


def _nul(line: int, param: str) -> LineError:
    return LineError(
        "invalid_request",
        f"Line {line}: '{param}' contains a NUL character (\\u0000), which no id or model name "
        "may hold.",
        line,
        param,
    )


def _check_body(body: dict[str, Any], line: int, endpoint: str) -> LineError | None:
    if body.get("stream") is True:
        return LineError(
            "streaming_unsupported",
            f"Line {line}: 'body.stream' must not be true; batch requests cannot stream.",
            line,
            "body.stream",
        )
    if "model" not in body:
        return _missing(line, "body.model")
    if not isinstance(body["model"], str) or not body["model"]:
        return _invalid(line, "body.model", "a non-empty string", body["model"])
    if NUL in body["model"]:
        return _nul(line, "body.model")
    check = _ENDPOINT_CHECKS.get(endpoint)
    return check(body, line) if check is not None else None


def parse_batch_line(
    raw: bytes, line: int, endpoint: str, *, estimate: bool = True
) -> ParsedLine | LineError:
    """Validate one ``{"custom_id","method","url","body"}`` line against the batch endpoint.
    ``estimate=False`` leaves ``est_tokens`` 0 (the caller has no token budget to spend it on)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _undecodable(raw, line, str(exc))
    if not isinstance(obj, dict):
        return LineError(
            "invalid_request",
            f"Line {line}: expected a JSON object, got {_type_name(obj)}.",
            line,
        )
    if nested_too_deep(raw, obj):
        return LineError("invalid_request", too_deep_message(f"Line {line}"), line)
    problem = _check_envelope(obj, line, endpoint) or _check_body(obj["body"], line, endpoint)
    if problem is not None:
        return problem
    body: dict[str, Any] = obj["body"]
    est_input, est_output = estimate_parts(body, endpoint) if estimate else (0, 0)
    return ParsedLine(
        line=line,
        custom_id=obj["custom_id"],
        body=body,
        body_bytes=orjson.dumps(body),
        model=body["model"],
        est_tokens=max(1, est_input + est_output) if estimate else 0,
        est_output=est_output,
    )


# --- token estimate ------------------------------------------------------------------------------


def _text_size(value: object) -> tuple[int, int]:
    """(characters of text, literal token ids) inside a known prompt-like field."""
    if isinstance(value, str):
        return len(value), 0
    if isinstance(value, int) and not isinstance(value, bool):
        return 0, 1  # a pre-tokenised prompt/input: each integer is one token
    chars = tokens = 0
    if isinstance(value, list):
        for item in value:
            c, t = _text_size(item)
            chars += c
            tokens += t
    elif isinstance(value, dict):
        for key in ("text", "content"):
            if key in value:
                c, t = _text_size(value[key])
                chars += c
                tokens += t
    return chars, tokens


def _message_count(value: object) -> int:
    if not isinstance(value, list):
        return 0
    return sum(1 for item in value if isinstance(item, dict))


def _output_cap(body: Mapping[str, Any], endpoint: str) -> int:
    for name in _OUTPUT_CAP_FIELDS:
        cap = body.get(name)
        if isinstance(cap, int) and not isinstance(cap, bool) and cap >= 0:
            return cap
    return 0 if endpoint == _EMBEDDINGS else _DEFAULT_OUTPUT_TOKENS


def estimate_tokens(body: Mapping[str, Any], endpoint: str) -> int:
    """A cheap request-size estimate for TPM budgets: ~4 characters a token plus the output cap.

    Walks only the known prompt fields (messages, prompt, input, instructions), so it stays
    fast on million-line files; always at least 1.
    """
    return max(1, sum(estimate_parts(body, endpoint)))


def estimate_parts(body: Mapping[str, Any], endpoint: str) -> tuple[int, int]:
    """``estimate_tokens`` in its two parts: (input estimate, output cap)."""
    chars = tokens = 0
    for name in ("messages", "prompt", "input", "instructions"):
        if name in body:
            c, t = _text_size(body[name])
            chars += c
            tokens += t
    messages = _message_count(body.get("messages")) + _message_count(body.get("input"))
    total = math.ceil(chars / 4) + tokens + _TOKENS_PER_MESSAGE * messages
    return min(total, MAX_ESTIMATE), min(_output_cap(body, endpoint), MAX_ESTIMATE)
