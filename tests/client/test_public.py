"""The public surface: a deliberate ``__all__``, ``batchgate.Client`` without loading the
SDK for the server, and a package that imports nothing of the server side."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import batchgate
import batchgate.client
from batchgate.client import errors, types

PACKAGE = Path(batchgate.client.__file__).parent


@pytest.mark.parametrize("module", [batchgate.client, errors, types])
def test_all_names_what_the_module_defines(module: object) -> None:
    exported = set(module.__all__)  # type: ignore[attr-defined]
    assert exported <= set(dir(module))
    assert module.__all__ == sorted(module.__all__)  # type: ignore[attr-defined]
    if module is batchgate.client:
        return
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module.__name__  # type: ignore[attr-defined]
    }
    assert defined == exported


def test_the_package_exports_every_public_name_of_errors_and_types() -> None:
    exported = set(batchgate.client.__all__)
    assert set(errors.__all__) - {"status_error_class"} <= exported
    assert set(types.__all__) <= exported
    assert {"Client", "AsyncClient"} <= exported


def test_batchgate_client_is_there_but_loaded_only_on_use() -> None:
    assert batchgate.Client is batchgate.client.Client
    assert batchgate.AsyncClient is batchgate.client.AsyncClient
    assert set(batchgate.__all__) == {"AsyncClient", "Client", "__version__"}
    with pytest.raises(AttributeError):
        batchgate.Nope  # noqa: B018
    code = "import sys, batchgate; print('batchgate.client' in sys.modules, 'httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_sdk_imports_only_itself_from_batchgate() -> None:
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""] if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names] if isinstance(node, ast.Import)
                else []
            )  # fmt: skip
            for name in names:
                if name.startswith("batchgate"):
                    assert name.startswith("batchgate.client"), f"{path.name} imports {name}"
