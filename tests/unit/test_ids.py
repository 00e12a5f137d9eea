"""Ids sort by creation, even many in one millisecond (cursor pagination relies on it)."""

from __future__ import annotations

from batchgate import ids


def test_ids_are_strictly_increasing_and_prefixed() -> None:
    made = [ids.batch_id() for _ in range(5000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(m.startswith("batch_") and len(m) == len("batch_") + 26 for m in made)
    assert ids.file_id().startswith("file-")
