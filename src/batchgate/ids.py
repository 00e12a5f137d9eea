"""Prefixed, time-sortable ids: ``batch_…``, ``file-…``, ``batch_req_…``.

The body is 26 chars of Crockford base32: 48 bits of milliseconds then 80 random bits, so ids
sort by creation time as strings (what cursor pagination relies on).
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A new id: ``prefix`` + 10 time chars + 16 random chars."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return prefix + _encode(millis, 10) + _encode(rand, 16)


def batch_id() -> str:
    return new_id("batch_")


def file_id() -> str:
    return new_id("file-")


def request_id() -> str:
    return new_id("req_")
