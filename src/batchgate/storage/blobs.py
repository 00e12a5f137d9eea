"""Blob store on a local directory: input files and finished output/error files.

Writes go to a temporary name and are renamed into place, so a reader never sees half a blob.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


class _TooLarge(Exception):
    pass


class BlobStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        if "/" in key or key.startswith("."):
            raise ValueError(f"bad blob key {key!r}")
        return self.root / key

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        """Open ``key`` for writing; it appears atomically when the block exits cleanly."""
        final = self.path(key)
        tmp = final.with_name(f".{key}.tmp")
        with open(tmp, "wb") as fh:
            try:
                yield fh
            except BaseException:
                fh.close()
                tmp.unlink(missing_ok=True)
                raise
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)

    def put_stream(
        self, key: str, src: BinaryIO, *, limit: int | None = None, chunk: int = 1 << 20
    ) -> int | None:
        """Copy ``src`` into ``key``; the number of bytes written, or None (and nothing
        stored) as soon as the copy would pass ``limit`` bytes."""
        try:
            with self.writer(key) as dst:
                while data := src.read(chunk):
                    if limit is not None and dst.tell() + len(data) > limit:
                        raise _TooLarge
                    dst.write(data)
                return dst.tell()
        except _TooLarge:
            return None

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
