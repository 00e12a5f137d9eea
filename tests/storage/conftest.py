"""The storage tests' one fixture: a migrated SqlStore on each backend in turn (``db_url``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from batchgate.storage.sql import SqlStore, open_store


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = open_store(db_url)
    yield s
    s.close()
