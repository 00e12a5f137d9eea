"""Anthropic's Messages API as an upstream (x-api-key, anthropic-version)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime

from batchgate.config import UpstreamConfig
from batchgate.providers.http import HttpProvider

ANTHROPIC_VERSION = "2023-06-01"
_BUDGETS = ("requests", "tokens", "input-tokens", "output-tokens")


class AnthropicProvider(HttpProvider):
    kind = "anthropic"
    request_id_header = "request-id"

    def auth_headers(self, upstream: UpstreamConfig) -> dict[str, str]:
        key = upstream.api_key.reveal() if upstream.api_key else None
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        return headers

    def pause_hint(self, headers: Mapping[str, str]) -> float | None:
        """Anthropic's ``anthropic-ratelimit-<budget>-remaining`` / ``-reset`` (RFC 3339):
        a budget at 0 holds the lane until its reset."""
        now = time.time()
        waits = []
        for budget in _BUDGETS:
            remaining = headers.get(f"anthropic-ratelimit-{budget}-remaining")
            reset = headers.get(f"anthropic-ratelimit-{budget}-reset")
            if remaining != "0" or not reset:
                continue
            try:
                at = datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
            waits.append(at - now)
        wait = max(waits, default=0.0)
        return min(wait, 60.0) if wait > 0 else None

    def url(self, endpoint: str) -> str:
        # Every row bound for Anthropic was made a Messages body at ingest.
        return self._base + "/messages"
