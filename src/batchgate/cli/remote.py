"""Client commands against a running server: submit, status, wait, results, cancel, ls, files
(placeholder, being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the client commands to ``app``."""
