"""An HTTP CONNECT tunnel through a forward proxy, for ``FastHttpClient``.

``open_tunnel`` connects to the proxy, asks it to ``CONNECT host:port`` and hands back the
socket once the proxy answered 2xx; the client then speaks TLS (https) or plain HTTP over it
as over a direct connection. It runs once per new upstream connection, never per request.
Only http:// proxies (the usual kind: squid, corporate gateways); ``user:password@`` in the
proxy URL is sent as ``Proxy-Authorization: Basic``.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["Proxy", "open_tunnel"]

_MAX_ANSWER = 64 * 1024  # a CONNECT answer is a status line and a few headers


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: str | None  # the Proxy-Authorization value, from the URL's user:password

    @classmethod
    def parse(cls, url: str) -> Proxy:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("the proxy must be an http://HOST:PORT URL")
        auth = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            auth = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        return cls(parts.hostname, parts.port or 80, auth)


async def open_tunnel(proxy: Proxy, host: str, port: int) -> socket.socket:
    """A connected non-blocking socket through which bytes reach ``host:port``; raises
    ConnectionError (proxy unreachable or refused) or OSError."""
    loop = asyncio.get_running_loop()
    sock = await _dial(loop, proxy.host, proxy.port)
    try:
        await loop.sock_sendall(sock, _connect_request(proxy, host, port))
        await _read_answer(loop, sock)
    except BaseException:
        sock.close()
        raise
    return sock


def _connect_request(proxy: Proxy, host: str, port: int) -> bytes:
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _dial(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    """Connect to the first address of ``host`` that accepts."""
    error: OSError = OSError(f"{host} has no address")
    for family, kind, proto, _, address in await loop.getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    ):
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except BaseException as exc:
            sock.close()
            if not isinstance(exc, OSError):
                raise
            error = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as asyncio does its own
        return sock
    raise ConnectionError(f"cannot connect to proxy {host}:{port}: {error}")


async def _read_answer(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Read the proxy's answer head; a non-2xx status is a ConnectionError."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await loop.sock_recv(sock, 4096)
        if not chunk:
            raise ConnectionError("the proxy closed the connection during CONNECT")
        head += chunk
        if len(head) > _MAX_ANSWER:
            raise ConnectionError("the proxy's answer to CONNECT is too large")
    status = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].startswith("2"):
        raise ConnectionError(f"the proxy refused the tunnel: {status!r}")
    if not head.endswith(b"\r\n\r\n"):  # the upstream speaks only after us: nothing may follow
        raise ConnectionError("the proxy sent bytes after its answer to CONNECT")
