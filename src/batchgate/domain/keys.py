"""API keys as values: a high-entropy secret shown once, kept only as its SHA-256 hash and a
short prefix to recognise it by; the rules for key and tenant names."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from batchgate.errors import InvalidRequest

SECRET_PREFIX = "bg_"
SHOWN = len(SECRET_PREFIX) + 5  # the characters of a secret that ``keys list`` shows
ID_PREFIX = "key_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: the secret (for the user, once) and what the store keeps of it."""

    secret: str
    key_hash: str
    prefix: str


def issue() -> IssuedKey:
    """A fresh secret, ``bg_`` + 256 random bits."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    return IssuedKey(secret, hash_secret(secret), secret[:SHOWN])


def hash_secret(secret: str) -> str:
    """SHA-256, hex. A fast unsalted hash is right for a 256-bit random secret (no dictionary
    to search, unlike a password), and it lets a request find its key by an indexed lookup."""
    return hashlib.sha256(secret.encode()).hexdigest()


def check_name(value: str, what: str) -> str:
    """A key or tenant name: 1-64 of letters, digits and ``_.@-``, starting with a letter or
    digit; never ``key_…``, so ``keys revoke ID_OR_NAME`` is never ambiguous."""
    if not _NAME.match(value) or value.startswith(ID_PREFIX):
        raise InvalidRequest(
            f"Invalid {what} {value!r}: use 1-64 letters, digits or '_.@-', starting with a "
            f"letter or digit (and not '{ID_PREFIX}').",
            param=what,
        )
    return value
