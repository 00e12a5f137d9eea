"""Who is calling: each request's API key (``Authorization: Bearer`` or ``x-api-key``) is
resolved once, by a middleware in front of every route, to a Caller: the tenant that owns what
the request creates, and the scope of what it may read or change.

With no key ever made in the store the server is open (every caller is tenant ``""`` and a
presented key is ignored), if the app allows it: the CLI allows it only on a loopback address.
Once a key has been made, revoking every key closes the server rather than opening it again,
unless it was started to run open anyway (``serve --open``, loopback only).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from batchgate.api.errors import on_client_error, on_store_down
from batchgate.errors import AuthenticationFailed, ClientError, StoreUnavailable
from batchgate.service import Service

log = logging.getLogger("batchgate.auth")

PUBLIC = frozenset({"/health"})
_HOW = "send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
_REFUSALS = {
    "missing_api_key": f"Missing API key: {_HOW}.",
    "invalid_api_key": "Invalid API key: it is unknown or has been revoked.",
    "no_api_keys": (
        "This server has no API keys and does not run open on a non-loopback address; an "
        "operator creates one with `batchgate keys create NAME`."
    ),
    "all_keys_revoked": (
        "Every API key of this server has been revoked, so it refuses every request (it does "
        "not fall back to open mode); an operator creates a key with `batchgate keys create "
        "NAME`."
    ),
}


@dataclass(frozen=True, slots=True)
class Caller:
    tenant: str  # owns what the request creates
    admin: bool = False  # an admin key reads and changes every tenant's objects
    key_id: str | None = None  # None in open mode

    @property
    def scope(self) -> str | None:
        """The tenant whose objects the caller may read or change; None means every tenant."""
        return None if self.admin else self.tenant


OPEN = Caller("")


def presented_key(headers: Headers) -> str | None:
    """The key a request carries: ``Authorization: Bearer`` first, else ``x-api-key``."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key", "").strip() or None


def _refusal(code: str) -> AuthenticationFailed:
    return AuthenticationFailed(_REFUSALS[code], code=code)


class KeyRing:
    """Resolves presented keys through the service. A key is looked up afresh on every request,
    so a revocation holds from the next one; whether any live key exists (open or not) is
    remembered for ``ttl`` seconds."""

    def __init__(
        self, service: Service, *, allow_open: bool, open_after_revoke: bool = False,
        ttl: float = 1.0,
    ) -> None:  # fmt: skip
        self.service = service
        self.allow_open = allow_open
        self.open_after_revoke = open_after_revoke
        self.ttl = ttl
        self._state: tuple[bool, bool] | None = None  # (a live key, a key ever made)
        self._checked = 0.0

    async def caller(self, secret: str | None) -> Caller:
        """The caller presenting ``secret``; raises AuthenticationFailed when refused."""
        if secret:
            key = await self.service.key_for(secret)
            if key is not None and key.live:
                return Caller(key.tenant, bool(key.admin), key.id)
        mode = await self._mode()
        if mode == "keys":
            raise _refusal("invalid_api_key" if secret else "missing_api_key")
        if mode == "revoked":
            raise _refusal("all_keys_revoked")
        if mode == "closed":
            raise _refusal("no_api_keys")
        return OPEN

    async def _mode(self) -> str:
        """keys (a live key exists), open, revoked (every key made was revoked: closed) or
        closed (no key, and this server may not run open)."""
        now = time.monotonic()
        if self._state is None or now - self._checked >= self.ttl:
            state = await self.service.key_state()
            if self._state is not None and state != self._state:
                log.warning("auth_mode mode=%s", self._say(self._of(state)))
            self._state, self._checked = state, now
        return self._of(self._state)

    def _of(self, state: tuple[bool, bool]) -> str:
        live, ever = state
        if live:
            return "keys"
        if ever and not self.open_after_revoke:
            return "revoked"
        return "open" if self.allow_open else "closed"

    @staticmethod
    def _say(mode: str) -> str:
        return {
            "keys": "keys: a live API key exists; every request needs one",
            "open": "open: no live API key; anyone here is tenant ''",
            "revoked": "closed: every API key was revoked; every request is refused until a "
            "key is created",
            "closed": "closed: no live API key; every request is refused",
        }[mode]


class Authenticate:
    """ASGI middleware: puts the Caller in ``request.state.caller``, or answers 401 in the
    dialect's envelope; every path but ``/health``."""

    def __init__(
        self, app: ASGIApp, *, service: Service, allow_open: bool, open_after_revoke: bool = False
    ) -> None:
        self.app = app
        self.keys = KeyRing(service, allow_open=allow_open, open_after_revoke=open_after_revoke)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC:
            await self.app(scope, receive, send)
            return
        try:
            caller = await self.keys.caller(presented_key(Headers(scope=scope)))
        except (AuthenticationFailed, StoreUnavailable) as exc:
            await self._refuse(scope, receive, send, exc)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        request = Request(scope, receive)
        if isinstance(exc, ClientError):
            log.info("auth_refused code=%s path=%s", exc.code, scope["path"])
            response = await on_client_error(request, exc)
        else:
            response = await on_store_down(request, exc)
        await response(scope, receive, send)
