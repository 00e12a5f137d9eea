"""Configuration is read once, at the edge: no module below the CLI reads the environment.

``cli/`` turns flags, files and environment variables into a ``Config`` (``runtime.build_config``
→ ``from_environment``), and everything below gets values. Exempt, with the reason:

* ``client/``: the Python SDK is a library with its own edge; like the OpenAI SDK it falls
  back to BATCHGATE_URL / BATCHGATE_API_KEY when its constructor is given none.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "batchgate"
EDGES = ("cli", "client")
_OS_NAMES = frozenset({"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"})
# urllib's helpers that read the proxy variables themselves
_URLLIB_NAMES = frozenset({"getproxies", "getproxies_environment"})


def env_reads(path: Path) -> list[str]:
    """Each place in ``path`` that reads the environment, as ``line: what``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "os" and node.attr in _OS_NAMES:
                found.append(f"{node.lineno}: os.{node.attr}")
            if node.attr in _URLLIB_NAMES:
                found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "urllib.request"):
            names = {a.name for a in node.names} & (_OS_NAMES | _URLLIB_NAMES)
            found += [f"{node.lineno}: from {node.module} import {n}" for n in sorted(names)]
    return found


def test_no_module_below_the_cli_reads_the_environment() -> None:
    bad = {
        f"{path.relative_to(SRC)}:{where}"
        for path in SRC.rglob("*.py")
        if path.relative_to(SRC).parts[0] not in EDGES
        for where in env_reads(path)
    }
    assert not bad, sorted(bad)


def test_the_checker_sees_reads() -> None:
    runtime = env_reads(SRC / "cli" / "runtime.py")
    assert any("os.environ" in r for r in runtime)
    assert any("getproxies_environment" in r for r in runtime)
