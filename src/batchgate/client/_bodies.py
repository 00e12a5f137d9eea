"""Request bodies generated lazily, in chunks: a multipart upload, JSONL from dicts, and the
``{"requests": [...]}`` of a Message Batch. Nothing is held whole in memory.

Our own small multipart writer rather than httpx's ``files=``: httpx wants a file object, and
an iterable of dicts or a path to open only while the body is sent would each need an adapter;
one generator serves the sync and async clients alike and knows its length when it can."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from batchgate.client._lines import LineSplitter, decode_object

CHUNK = 64 * 1024
PathLike = str | os.PathLike[str]
Requests = Iterable[Mapping[str, Any]] | PathLike
FileSource = PathLike | bytes | IO[bytes] | Iterable[Mapping[str, Any]]
Budget = int | float | str  # USD: a number, or a decimal string such as "2.50"


@dataclass(frozen=True)
class Body:
    """A streamed request body: ``chunks()`` starts a fresh generator each time it is called."""

    chunks: Callable[[], Iterator[bytes]]
    content_type: str
    length: int | None = None


def dump(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def coalesce(parts: Iterable[bytes], size: int = CHUNK) -> Iterator[bytes]:
    """Join small parts into chunks of about ``size`` bytes (one write per line is slow)."""
    buf: list[bytes] = []
    held = 0
    for part in parts:
        buf.append(part)
        held += len(part)
        if held >= size:
            yield b"".join(buf)
            buf, held = [], 0
    if buf:
        yield b"".join(buf)


def read_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def path_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        yield from read_chunks(stream)


def mappings(items: Iterable[object]) -> Iterator[Mapping[str, Any]]:
    """The items, each checked to be a dict (a TypeError names the first that is not)."""
    for n, item in enumerate(items, 1):
        if not isinstance(item, Mapping):
            raise TypeError(f"request {n} is a {type(item).__name__}, not a dict")
        yield item


def jsonl_lines(items: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    for item in mappings(items):
        yield dump(item) + b"\n"


def path_objects(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSONL file, read line by line; ValueError names a bad line."""
    lines = LineSplitter()
    for number, line in (p for chunk in path_chunks(path) for p in lines.feed(chunk)):
        yield from _object(path, number, line)
    for number, line in lines.flush():
        yield from _object(path, number, line)


def _object(path: Path, number: int, line: bytes) -> Iterator[dict[str, Any]]:
    if line.strip():
        try:
            yield decode_object(line)
        except ValueError as exc:
            raise ValueError(f"{path} line {number}: {exc}") from None


def source_chunks(source: FileSource) -> tuple[Callable[[], Iterator[bytes]], int | None, str]:
    """How to stream an upload source: its chunks, its length when known, a default name."""
    if isinstance(source, bytes):
        return (lambda: iter((source,))), len(source), "upload"
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        return (lambda: path_chunks(path)), path.stat().st_size, path.name
    if hasattr(source, "read"):
        stream: IO[bytes] = source  # type: ignore[assignment]
        name = getattr(stream, "name", None)
        return (lambda: read_chunks(stream)), None, _basename(name) or "upload"
    items: Iterable[Mapping[str, Any]] = source
    return (lambda: coalesce(jsonl_lines(items))), None, "requests.jsonl"


def _basename(name: object) -> str | None:
    return os.path.basename(name) if isinstance(name, str) and name else None


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart(fields: Mapping[str, str], source: FileSource, filename: str | None) -> Body:
    """``fields`` as text parts, then ``source`` as the part named ``file``."""
    chunks, length, default_name = source_chunks(source)
    boundary = os.urandom(16).hex()
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'
        f"{value}\r\n".encode()
        for name, value in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{_quote(filename or default_name)}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        yield from chunks()
        yield tail

    total = None if length is None else len(head) + length + len(tail)
    return Body(body, f"multipart/form-data; boundary={boundary}", total)


def batch_lines(requests: Iterable[Mapping[str, Any]], endpoint: str) -> Iterator[dict[str, Any]]:
    """OpenAI batch lines with ``method`` (POST) and ``url`` (the endpoint) filled in."""
    for item in mappings(requests):
        line = dict(item)
        line.setdefault("method", "POST")
        line.setdefault("url", endpoint)
        yield line


def message_requests(requests: Requests, budget_usd: Budget | None = None) -> Body:
    """``{"requests": [...]}`` generated item by item (a missing path fails here, at once),
    with ``budget_usd`` after the list when given."""
    items: Iterable[Mapping[str, Any]]
    if isinstance(requests, str | os.PathLike):
        path = Path(requests)
        path.stat()
        items = path_objects(path)
    else:
        items = requests

    def parts() -> Iterator[bytes]:
        yield b'{"requests":['
        for n, line in enumerate(jsonl_lines(items)):
            yield (b"," if n else b"") + line[:-1]
        budget = b"" if budget_usd is None else b',"budget_usd":' + json.dumps(budget_usd).encode()
        yield b"]" + budget + b"}"

    return Body(lambda: coalesce(parts()), "application/json")
