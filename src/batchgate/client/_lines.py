"""Sans-IO JSONL decoding: byte chunks in, typed results and bad lines out, line by line."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from batchgate.client.errors import ResultDecodeError
from batchgate.client.types import BadLine

R = TypeVar("R")
OnBadLine = Callable[[BadLine], object]


class LineSplitter:
    """Cuts a byte stream into lines, numbered from 1 across every chunk it is fed."""

    def __init__(self) -> None:
        self._tail = b""
        self.number = 0

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        *lines, self._tail = (self._tail + chunk).split(b"\n")
        return [self._numbered(line) for line in lines]

    def flush(self) -> list[tuple[int, bytes]]:
        """The last line when it had no final newline (call at the end of a document)."""
        tail, self._tail = self._tail, b""
        return [self._numbered(tail)] if tail else []

    def _numbered(self, line: bytes) -> tuple[int, bytes]:
        self.number += 1
        return self.number, line.removesuffix(b"\r")


def decode_object(line: bytes) -> dict[str, Any]:
    """One JSONL line as a JSON object; ValueError says what is wrong with it."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise ValueError(f"not a JSON object but {type(value).__name__}")
    return value


class ResultDecoder(Generic[R]):
    """Results from JSONL chunks. Blank lines are skipped; a line that cannot be read goes
    to ``on_bad_line`` or, without one, is kept for ``finish`` to raise together."""

    def __init__(self, parse: Callable[[Mapping[str, Any]], R], on_bad_line: OnBadLine | None):
        self._parse = parse
        self._on_bad_line = on_bad_line
        self._lines = LineSplitter()
        self.bad_lines: list[BadLine] = []

    def feed(self, chunk: bytes) -> list[R]:
        return self._decode_all(self._lines.feed(chunk))

    def flush(self) -> list[R]:
        return self._decode_all(self._lines.flush())

    def finish(self) -> None:
        if self.bad_lines:
            raise ResultDecodeError(self.bad_lines)

    def _decode_all(self, lines: list[tuple[int, bytes]]) -> list[R]:
        results = (self._decode(number, line) for number, line in lines if line.strip())
        return [r for r in results if r is not None]

    def _decode(self, number: int, line: bytes) -> R | None:
        try:
            return self._parse(decode_object(line))
        except ValueError as exc:
            self._bad(BadLine(number, line, str(exc)))
            return None

    def _bad(self, bad: BadLine) -> None:
        if self._on_bad_line is not None:
            self._on_bad_line(bad)
        else:
            self.bad_lines.append(bad)
