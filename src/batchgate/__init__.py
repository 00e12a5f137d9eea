"""batchgate: a self-hosted LLM batch server (OpenAI Files + Batches on any upstream, durably).

``batchgate.Client`` and ``batchgate.AsyncClient`` are the Python SDK (``batchgate.client``),
imported on first use so that the server never loads it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchgate.client import AsyncClient, Client

__version__ = "0.1.0"

__all__ = ["AsyncClient", "Client", "__version__"]

_LAZY = frozenset({"AsyncClient", "Client"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from batchgate import client

        return getattr(client, name)
    raise AttributeError(f"module 'batchgate' has no attribute {name!r}")
