"""Providers: how one request is sent to one kind of upstream, and what its answer means."""

from __future__ import annotations

from collections.abc import Callable

from batchgate.config import UpstreamConfig
from batchgate.providers.anthropic import AnthropicProvider
from batchgate.providers.base import Attempt, Provider
from batchgate.providers.openai import OpenAIProvider

PROVIDERS: dict[str, Callable[[UpstreamConfig], Provider]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
}


def provider_for(upstream: UpstreamConfig) -> Provider:
    """The provider of ``upstream.kind`` (the config loader has checked the kind)."""
    return PROVIDERS[upstream.kind](upstream)


__all__ = [
    "PROVIDERS",
    "AnthropicProvider",
    "Attempt",
    "OpenAIProvider",
    "Provider",
    "provider_for",
]
