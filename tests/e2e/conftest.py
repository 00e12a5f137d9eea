"""End-to-end fixtures: real ``batchgate`` processes, killed in the finalizer whatever happens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.procs import Procs


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    """Spawn processes through this; their groups are SIGKILLed and their log tails printed
    (shown by pytest for a failing test) after the test."""
    p = Procs(tmp_path / "logs")
    try:
        yield p
    finally:
        p.close()
