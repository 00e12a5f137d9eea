"""The async client: ``AsyncClient``, whose resources (see _resources) send calls async."""

from __future__ import annotations

from types import TracebackType

import httpx

from batchgate.client._http import AsyncSender
from batchgate.client._resources import BaseClient


class AsyncClient(BaseClient[AsyncSender, httpx.AsyncBaseTransport, httpx.AsyncClient]):
    """An async batchgate client; see the package docstring for the arguments."""

    _new_http, _new_sender = httpx.AsyncClient, AsyncSender

    async def aclose(self) -> None:
        """Close the connection pool (not that of an ``http_client`` you passed in)."""
        await self._sender.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
