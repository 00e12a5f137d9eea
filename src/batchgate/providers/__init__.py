"""Providers: how one request is sent to one kind of upstream, and what its answer means."""

from batchgate.providers.base import Attempt, Provider
from batchgate.providers.openai import OpenAIProvider

__all__ = ["Attempt", "OpenAIProvider", "Provider"]
