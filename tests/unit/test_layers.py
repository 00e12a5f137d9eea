"""The tree is the architecture: each layer imports only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "batchgate"

BASE = {"errors", "ids"}
ALLOWED: dict[str, set[str]] = {
    "domain": BASE | {"domain"},
    "dialects": BASE | {"domain", "dialects"},
    "storage": BASE | {"domain", "storage"},
    "config": BASE | {"domain", "config"},  # the configuration values
    "routing": BASE | {"domain", "config", "routing"},
    "configfile": BASE | {"domain", "config", "routing", "configfile"},  # the TOML loader
    "providers": BASE | {"domain", "providers", "config"},
    "engine": BASE | {"domain", "dialects", "storage", "providers", "engine", "config", "routing"},
    "service": BASE
    | {"domain", "dialects", "storage", "providers", "engine", "config", "routing", "service"},
    # The API sees the service and the domain, never storage: the service is its only door.
    "api": BASE | {"domain", "dialects", "service", "config", "api"},
    "sim": {"sim"},
    "client": {"client"},  # the SDK ships alone: nothing of the server side
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "batchgate" and len(parts) > 1:
                found.add(parts[1])
    return found


def _layer_files(layer: str) -> list[Path]:
    single = SRC / f"{layer}.py"
    return [single] if single.exists() else sorted((SRC / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    bad = {
        f"{p.relative_to(SRC)} imports batchgate.{m}"
        for p in _layer_files(layer)
        for m in _imports(p) - ALLOWED[layer]
    }
    assert not bad, sorted(bad)


def test_the_checker_sees_imports() -> None:
    assert "domain" in _imports(SRC / "storage" / "rows.py")
    assert "storage" in _imports(SRC / "service" / "core.py")


def test_every_package_has_a_rule() -> None:
    """A new package must say what it may import (cli, the top, may import anything)."""
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - set(ALLOWED) - {"cli"} == set()
