"""The HTTP transport both upstream kinds share: send a JSON body, hand back an Attempt
(never raise).

By default requests go through ``FastHttpClient`` (``providers/fasthttp.py``: asyncio +
httptools, keep-alive pool), several times cheaper per request than aiohttp. Setting the
environment variable ``BATCHGATE_HTTP_CLIENT=aiohttp`` (read once, when a provider is made)
selects the previous aiohttp session instead (``AiohttpTransport``), as a fallback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

import aiohttp

from batchgate.config import UpstreamConfig
from batchgate.providers.base import Attempt
from batchgate.providers.fasthttp import FastHttpClient

_RETRY_HEADERS = ("retry-after", "retry-after-ms")
CLIENT_ENV = "BATCHGATE_HTTP_CLIENT"  # "fast" (default) | "aiohttp"


def _retry_headers(headers: Mapping[str, str]) -> dict[str, str] | None:
    found = {h: headers[h] for h in _RETRY_HEADERS if h in headers}
    return found or None


class Transport(Protocol):
    """POST a body; (status, lower-cased headers, body), or TimeoutError / OSError."""

    async def post(self, url: str, body: bytes) -> tuple[int, Mapping[str, str], bytes]: ...

    async def close(self) -> None: ...


class AiohttpTransport:
    """The aiohttp fallback (``BATCHGATE_HTTP_CLIENT=aiohttp``)."""

    def __init__(self, *, headers: Mapping[str, str], timeout: float) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=timeout),
            headers={"Content-Type": "application/json", **headers},
        )

    async def post(self, url: str, body: bytes) -> tuple[int, Mapping[str, str], bytes]:
        try:
            async with self._session.post(url, data=body) as resp:
                data = await resp.read()
                headers = {k.lower(): v for k, v in resp.headers.items()}
                return resp.status, headers, data
        except aiohttp.ClientError as exc:
            if isinstance(exc, OSError):
                raise
            raise ConnectionError(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        await self._session.close()


class HttpProvider:
    """The transport both upstream kinds share; subclasses say where and with which headers."""

    kind = "http"
    request_id_header = "x-request-id"

    def __init__(self, upstream: UpstreamConfig) -> None:
        self.name = upstream.name
        self._base = upstream.url.rstrip("/")
        self._headers = self.auth_headers(upstream)
        self._timeout = upstream.timeout
        self._use_aiohttp = os.environ.get(CLIENT_ENV, "").strip().lower() == "aiohttp"
        self._client: Transport | None = None

    def auth_headers(self, upstream: UpstreamConfig) -> dict[str, str]:
        raise NotImplementedError

    def url(self, endpoint: str) -> str:
        raise NotImplementedError

    def pause_hint(self, headers: Mapping[str, str]) -> float | None:
        """Seconds to hold the lane because the upstream's rate headers say a budget is
        spent; None when they say nothing. ``headers`` has lower-cased names."""
        return None

    def _get_client(self) -> Transport:
        """Made on first use, inside the running loop."""
        if self._client is None:
            if self._use_aiohttp:
                self._client = AiohttpTransport(headers=self._headers, timeout=self._timeout)
            else:
                self._client = FastHttpClient(
                    self._base, headers=self._headers, timeout=self._timeout
                )
        return self._client

    async def send(self, endpoint: str, body: bytes) -> Attempt:
        try:
            status, headers, data = await self._get_client().post(self.url(endpoint), body)
        except TimeoutError:
            return Attempt(None, kind="timeout", message="The upstream did not answer in time.")
        except OSError as exc:  # ConnectionError included
            return Attempt(None, kind="connect", message=f"Upstream connection failed: {exc}")
        return Attempt(
            status=status,
            body=data,
            request_id=headers.get(self.request_id_header),
            retry_after=_retry_headers(headers) if status >= 400 else None,
            pause=self.pause_hint(headers),
        )

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
