"""OpenAI-compatible upstreams: OpenAI, vLLM, Ollama, SGLang, …"""

from __future__ import annotations

from collections.abc import Mapping

from batchgate.config import UpstreamConfig
from batchgate.providers.base import Budget
from batchgate.providers.http import HttpProvider
from batchgate.providers.ratelimits import openai_budgets


class OpenAIProvider(HttpProvider):
    kind = "openai"

    def auth_headers(self, upstream: UpstreamConfig) -> dict[str, str]:
        key = upstream.api_key.reveal() if upstream.api_key else None
        return {"Authorization": f"Bearer {key}"} if key else {}

    def budgets(self, headers: Mapping[str, str]) -> tuple[Budget, ...]:
        return (
            openai_budgets(headers)
            if "x-ratelimit-remaining-requests" in headers
            or ("x-ratelimit-remaining-tokens" in headers)
            else ()
        )

    def url(self, endpoint: str) -> str:
        # The batch endpoint is "/v1/…"; the upstream base URL already ends in its own "/v1".
        # A Messages batch row was translated to a chat body at ingest.
        if endpoint == "/v1/messages":
            return self._base + "/chat/completions"
        path = endpoint[3:] if endpoint.startswith("/v1/") else endpoint
        return self._base + path
