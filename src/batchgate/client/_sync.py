"""The blocking client: ``Client``, whose resources (see _resources) send calls blocking."""

from __future__ import annotations

from types import TracebackType

import httpx

from batchgate.client._http import SyncSender
from batchgate.client._resources import BaseClient


class Client(BaseClient[SyncSender, httpx.BaseTransport, httpx.Client]):
    """A blocking batchgate client; see the package docstring for the arguments."""

    _new_http, _new_sender = httpx.Client, SyncSender

    def close(self) -> None:
        """Close the connection pool (not that of an ``http_client`` you passed in)."""
        self._sender.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
