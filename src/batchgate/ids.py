"""Prefixed, time-sortable ids: ``batch_…``, ``file-…``, ``batch_req_…``.

The body is 26 chars of Crockford base32: 48 bits of milliseconds then 80 random bits, so ids
sort by creation time as strings (what cursor pagination relies on).
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


_lock = threading.Lock()
_last = (0, 0)


def new_id(prefix: str) -> str:
    """A new id: ``prefix`` + 10 time chars + 16 random chars. Within one process ids are
    strictly increasing, even in the same millisecond (the random part is incremented)."""
    global _last
    millis = time.time_ns() // 1_000_000
    with _lock:
        if millis <= _last[0]:
            millis, rand = _last[0], _last[1] + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # room to increment
        _last = (millis, rand)
    return prefix + _encode(millis, 10) + _encode(rand, 16)


def batch_id() -> str:
    return new_id("batch_")


def file_id() -> str:
    return new_id("file-")


def request_id() -> str:
    return new_id("req_")
