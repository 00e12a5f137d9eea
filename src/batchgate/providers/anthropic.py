"""Anthropic's Messages API as an upstream (x-api-key, anthropic-version)."""

from __future__ import annotations

from batchgate.config import UpstreamConfig
from batchgate.providers.http import HttpProvider

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider(HttpProvider):
    kind = "anthropic"
    request_id_header = "request-id"

    def auth_headers(self, upstream: UpstreamConfig) -> dict[str, str]:
        key = upstream.api_key()
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        return headers

    def url(self, endpoint: str) -> str:
        # Every row bound for Anthropic was made a Messages body at ingest.
        return self._base + "/messages"
