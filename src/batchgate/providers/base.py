"""The Provider contract: send one request body, get one Attempt back (never raise)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Budget:
    """One rate budget as an answer's headers announce it: its size, what is left, and the
    seconds until it is full again (None where the upstream did not say)."""

    name: str  # "requests" | "tokens" | "input-tokens" | "output-tokens"
    limit: float | None
    remaining: float
    reset: float | None


@dataclass(slots=True)
class Attempt:
    """What one send produced. ``status`` is None when no HTTP answer came back."""

    status: int | None
    body: bytes = b""
    request_id: str | None = None
    retry_after: dict[str, str] | None = None  # Retry-After / retry-after-ms headers, if any
    kind: str = "http"  # http | connect | timeout
    message: str = ""
    pause: float | None = None  # seconds the upstream says its budget is spent (rate headers)
    budgets: tuple[Budget, ...] = ()  # the rate budgets its headers announced


class Provider(Protocol):
    name: str
    kind: str  # "openai" | "anthropic": the wire format it speaks

    async def send(self, endpoint: str, body: bytes) -> Attempt: ...

    async def close(self) -> None: ...
