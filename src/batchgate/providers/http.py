"""One aiohttp session per upstream: send a JSON body, hand back an Attempt (never raise)."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from batchgate.config import UpstreamConfig
from batchgate.providers.base import Attempt

_RETRY_HEADERS = ("retry-after", "retry-after-ms")


def _retry_headers(headers: Mapping[str, str]) -> dict[str, str] | None:
    found = {h: headers[h] for h in _RETRY_HEADERS if h in headers}
    return found or None


class HttpProvider:
    """The transport both upstream kinds share; subclasses say where and with which headers."""

    kind = "http"
    request_id_header = "x-request-id"

    def __init__(self, upstream: UpstreamConfig) -> None:
        self.name = upstream.name
        self._base = upstream.url.rstrip("/")
        self._headers = {"Content-Type": "application/json", **self.auth_headers(upstream)}
        self._timeout = aiohttp.ClientTimeout(total=upstream.timeout)
        self._session: aiohttp.ClientSession | None = None

    def auth_headers(self, upstream: UpstreamConfig) -> dict[str, str]:
        raise NotImplementedError

    def url(self, endpoint: str) -> str:
        raise NotImplementedError

    def pause_hint(self, headers: Mapping[str, str]) -> float | None:
        """Seconds to hold the lane because the upstream's rate headers say a budget is
        spent; None when they say nothing."""
        return None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, headers=self._headers
            )
        return self._session

    async def send(self, endpoint: str, body: bytes) -> Attempt:
        session = self._get_session()
        try:
            async with session.post(self.url(endpoint), data=body) as resp:
                data = await resp.read()
                return Attempt(
                    status=resp.status,
                    body=data,
                    request_id=resp.headers.get(self.request_id_header),
                    retry_after=_retry_headers(resp.headers) if resp.status >= 400 else None,
                    pause=self.pause_hint(resp.headers),
                )
        except TimeoutError:
            return Attempt(None, kind="timeout", message="The upstream did not answer in time.")
        except (aiohttp.ClientError, OSError) as exc:
            return Attempt(None, kind="connect", message=f"Upstream connection failed: {exc}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
