"""The blob directory: atomic writes and a size limit that stops the copy early."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from batchgate.storage.blobs import BlobStore


def test_put_stream_stores_and_reports_the_size(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    assert blobs.put_stream("k1", io.BytesIO(b"x" * 3000), chunk=1024) == 3000
    assert blobs.path("k1").read_bytes() == b"x" * 3000
    assert blobs.size("k1") == 3000


def test_over_the_limit_nothing_is_left_behind(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    assert blobs.put_stream("k2", io.BytesIO(b"x" * 3000), limit=2999, chunk=1024) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert blobs.put_stream("k3", io.BytesIO(b"x" * 3000), limit=3000) == 3000


def test_a_failed_write_leaves_no_blob(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    with pytest.raises(RuntimeError), blobs.writer("k4") as fh:
        fh.write(b"half")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_keys_cannot_escape_the_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        BlobStore(tmp_path).path("../etc")
