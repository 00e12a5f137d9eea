"""``batchgate run``: a one-shot local batch run with no server (placeholder, being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to ``app``."""
