"""The Provider contract: send one request body, get one Attempt back (never raise)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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


class Provider(Protocol):
    name: str
    kind: str  # "openai" | "anthropic": the wire format it speaks

    async def send(self, endpoint: str, body: bytes) -> Attempt: ...

    async def close(self) -> None: ...
