"""Anthropic's Messages API as an upstream (x-api-key, anthropic-version)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from batchgate.config import UpstreamConfig
from batchgate.providers.base import Budget
from batchgate.providers.http import HttpProvider
from batchgate.providers.ratelimits import ANTHROPIC_BUDGETS, anthropic_budgets, parse_reset_time

ANTHROPIC_VERSION = "2023-06-01"


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
        for budget in ANTHROPIC_BUDGETS:
            if headers.get(f"anthropic-ratelimit-{budget}-remaining") != "0":
                continue
            wait = parse_reset_time(headers.get(f"anthropic-ratelimit-{budget}-reset"), now)
            if wait is not None:
                waits.append(wait)
        wait = max(waits, default=0.0)
        return min(wait, 60.0) if wait > 0 else None

    def budgets(self, headers: Mapping[str, str]) -> tuple[Budget, ...]:
        if "anthropic-ratelimit-requests-remaining" not in headers and (
            "anthropic-ratelimit-tokens-remaining" not in headers
        ):
            return ()
        return anthropic_budgets(headers)

    def url(self, endpoint: str) -> str:
        # Every row bound for Anthropic was made a Messages body at ingest.
        return self._base + "/messages"
