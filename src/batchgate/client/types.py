"""Typed wire objects: frozen dataclasses read leniently from the server's JSON (unknown keys
ignored, missing or mistyped optional ones None), each keeping the dict it came from as ``raw``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

__all__ = [
    "BadLine",
    "Batch",
    "BatchError",
    "BatchResult",
    "Counts",
    "Deleted",
    "File",
    "MessageBatch",
    "MessageBatchResult",
    "MessageRequestCounts",
    "Page",
    "RequestCounts",
    "ResultError",
    "Usage",
]

T = TypeVar("T")
Raw = Mapping[str, Any]
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})


def _str(raw: Raw, key: str) -> str | None:
    value = raw.get(key)
    return value if isinstance(value, str) else None


def _int(raw: Raw, key: str) -> int | None:
    value = raw.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _count(raw: Raw, key: str) -> int:
    return _int(raw, key) or 0


def _obj(raw: Raw, key: str) -> dict[str, Any] | None:
    value = raw.get(key)
    return value if isinstance(value, dict) else None


def _time(raw: Raw, key: str) -> datetime | None:
    text = _str(raw, key)
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _id(raw: Raw) -> str:
    value = raw.get("id")
    if not isinstance(value, str):
        raise ValueError(f"expected an object with a string 'id', got {dict(raw)!r:.200}")
    return value


@dataclass(frozen=True)
class Counts:
    """How far a batch is, the same for both dialects."""

    total: int
    succeeded: int
    failed: int

    @property
    def done(self) -> int:
        return self.succeeded + self.failed


@dataclass(frozen=True)
class File:
    id: str
    bytes: int | None
    created_at: int | None
    filename: str | None
    purpose: str | None
    status: str | None
    expires_at: int | None
    raw: dict[str, Any]

    @classmethod
    def from_wire(cls, raw: Raw) -> File:
        return cls(
            _id(raw), _int(raw, "bytes"), _int(raw, "created_at"), _str(raw, "filename"),
            _str(raw, "purpose"), _str(raw, "status"), _int(raw, "expires_at"), dict(raw),
        )  # fmt: skip


@dataclass(frozen=True)
class RequestCounts:
    total: int
    completed: int
    failed: int

    @classmethod
    def from_wire(cls, raw: Raw | None) -> RequestCounts:
        raw = raw or {}
        return cls(_count(raw, "total"), _count(raw, "completed"), _count(raw, "failed"))


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_tokens: int
    reasoning_tokens: int

    @classmethod
    def from_wire(cls, raw: Raw | None) -> Usage | None:
        if raw is None:
            return None
        cached = _count(_obj(raw, "input_tokens_details") or {}, "cached_tokens")
        reasoning = _count(_obj(raw, "output_tokens_details") or {}, "reasoning_tokens")
        tokens = _count(raw, "input_tokens"), _count(raw, "output_tokens")
        return cls(*tokens, _int(raw, "total_tokens") or sum(tokens), cached, reasoning)


@dataclass(frozen=True)
class BatchError:
    """One entry of a failed batch's ``errors.data`` (``line`` is 1-based, None for the file)."""

    code: str | None
    message: str | None
    param: str | None
    line: int | None

    @classmethod
    def list_from_wire(cls, raw: Raw | None) -> list[BatchError]:
        items = (raw or {}).get("data")
        if not isinstance(items, list):
            return []
        return [
            cls(_str(e, "code"), _str(e, "message"), _str(e, "param"), _int(e, "line"))
            for e in items
            if isinstance(e, dict)
        ]


@dataclass(frozen=True)
class Batch:
    """An OpenAI-dialect batch (wire spec §2.2)."""

    id: str
    status: str | None
    endpoint: str | None
    input_file_id: str | None
    output_file_id: str | None
    error_file_id: str | None
    created_at: int | None
    completion_window: str | None
    request_counts: RequestCounts
    usage: Usage | None
    errors: list[BatchError]
    metadata: dict[str, Any] | None
    model: str | None
    expires_at: int | None
    in_progress_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    raw: dict[str, Any]

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def counts(self) -> Counts:
        rc = self.request_counts
        return Counts(rc.total, rc.completed, rc.failed)

    @classmethod
    def from_wire(cls, raw: Raw) -> Batch:
        return cls(
            id=_id(raw),
            status=_str(raw, "status"),
            endpoint=_str(raw, "endpoint"),
            input_file_id=_str(raw, "input_file_id"),
            output_file_id=_str(raw, "output_file_id"),
            error_file_id=_str(raw, "error_file_id"),
            created_at=_int(raw, "created_at"),
            completion_window=_str(raw, "completion_window"),
            request_counts=RequestCounts.from_wire(_obj(raw, "request_counts")),
            usage=Usage.from_wire(_obj(raw, "usage")),
            errors=BatchError.list_from_wire(_obj(raw, "errors")),
            metadata=_obj(raw, "metadata"),
            model=_str(raw, "model"),
            expires_at=_int(raw, "expires_at"),
            in_progress_at=_int(raw, "in_progress_at"),
            finalizing_at=_int(raw, "finalizing_at"),
            completed_at=_int(raw, "completed_at"),
            failed_at=_int(raw, "failed_at"),
            expired_at=_int(raw, "expired_at"),
            cancelling_at=_int(raw, "cancelling_at"),
            cancelled_at=_int(raw, "cancelled_at"),
            raw=dict(raw),
        )


@dataclass(frozen=True)
class MessageRequestCounts:
    processing: int
    succeeded: int
    errored: int
    canceled: int
    expired: int

    @classmethod
    def from_wire(cls, raw: Raw | None) -> MessageRequestCounts:
        raw = raw or {}
        return cls(
            _count(raw, "processing"), _count(raw, "succeeded"), _count(raw, "errored"),
            _count(raw, "canceled"), _count(raw, "expired"),
        )  # fmt: skip


@dataclass(frozen=True)
class MessageBatch:
    """An Anthropic-dialect Message Batch (wire spec §3.2); timestamps as aware datetimes."""

    id: str
    processing_status: str | None
    request_counts: MessageRequestCounts
    created_at: datetime | None
    ended_at: datetime | None
    expires_at: datetime | None
    cancel_initiated_at: datetime | None
    results_url: str | None
    raw: dict[str, Any]

    @property
    def status(self) -> str | None:
        """``processing_status``, under the name both dialects share."""
        return self.processing_status

    @property
    def ended(self) -> bool:
        return self.processing_status == "ended"

    @property
    def counts(self) -> Counts:
        rc = self.request_counts
        failed = rc.errored + rc.canceled + rc.expired
        return Counts(rc.processing + rc.succeeded + failed, rc.succeeded, failed)

    @classmethod
    def from_wire(cls, raw: Raw) -> MessageBatch:
        return cls(
            id=_id(raw),
            processing_status=_str(raw, "processing_status"),
            request_counts=MessageRequestCounts.from_wire(_obj(raw, "request_counts")),
            created_at=_time(raw, "created_at"),
            ended_at=_time(raw, "ended_at"),
            expires_at=_time(raw, "expires_at"),
            cancel_initiated_at=_time(raw, "cancel_initiated_at"),
            results_url=_str(raw, "results_url"),
            raw=dict(raw),
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; ``first_id``/``last_id`` fall back to the items' own ids."""

    data: list[T]
    has_more: bool
    first_id: str | None
    last_id: str | None

    @classmethod
    def from_wire(cls, raw: Raw, item: Callable[[Raw], T]) -> Page[T]:
        items = raw.get("data")
        if not isinstance(items, list):
            raise ValueError("expected a list object with a 'data' array")
        ids = [e.get("id") for e in items if isinstance(e, dict)]
        first = _str(raw, "first_id") or (ids[0] if ids else None)
        last = _str(raw, "last_id") or (ids[-1] if ids else None)
        return cls([item(e) for e in items], raw.get("has_more") is True, first, last)


@dataclass(frozen=True)
class Deleted:
    id: str
    deleted: bool

    @classmethod
    def from_wire(cls, raw: Raw) -> Deleted:
        deleted = raw.get("deleted", raw.get("type") == "message_batch_deleted")
        return cls(_id(raw), deleted is True)


@dataclass(frozen=True)
class ResultError:
    """Why a request has no reply: OpenAI's ``error.code`` or Anthropic's error type."""

    code: str | None
    message: str | None


def _custom_id(raw: Raw) -> str:
    value = raw.get("custom_id")
    if not isinstance(value, str):
        raise ValueError("no string 'custom_id'")
    return value


@dataclass(frozen=True)
class BatchResult:
    """One OpenAI batch output line (wire spec §2.5)."""

    custom_id: str
    id: str | None
    status_code: int | None
    request_id: str | None
    body: Any
    error: ResultError | None
    raw: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300

    @classmethod
    def from_wire(cls, raw: Raw) -> BatchResult:
        response, error = _obj(raw, "response") or {}, _obj(raw, "error")
        problem = ResultError(_str(error, "code"), _str(error, "message")) if error else None
        return cls(
            _custom_id(raw), _str(raw, "id"), _int(response, "status_code"),
            _str(response, "request_id"), response.get("body"), problem, dict(raw),
        )  # fmt: skip


@dataclass(frozen=True)
class MessageBatchResult:
    """One Anthropic result line (wire spec §3.4); ``error`` unwraps the error envelope."""

    custom_id: str
    type: str | None
    message: dict[str, Any] | None
    error: ResultError | None
    raw: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.type == "succeeded"

    @classmethod
    def from_wire(cls, raw: Raw) -> MessageBatchResult:
        result = _obj(raw, "result") or {}
        envelope = _obj(result, "error")
        inner = (_obj(envelope, "error") or envelope) if envelope else None
        problem = ResultError(_str(inner, "type"), _str(inner, "message")) if inner else None
        return cls(
            _custom_id(raw), _str(result, "type"), _obj(result, "message"), problem, dict(raw)
        )


@dataclass(frozen=True)
class BadLine:
    """A result line that could not be read: its 1-based number in the stream and why."""

    number: int
    raw: bytes
    reason: str
