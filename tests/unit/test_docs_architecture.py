"""docs/architecture.md cannot drift: its state tables are the domain's transition tables, its
import table is the layer test's ALLOWED, and every source path it names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batchgate.domain.states import BATCH_TRANSITIONS, ROW_TRANSITIONS
from tests.unit.test_layers import ALLOWED, BASE, SRC

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
TERMINAL = "(terminal)"
NOTHING = "(nothing of the server)"


def _table(marker: str) -> dict[str, set[str]]:
    """The Markdown table between ``<!-- marker -->`` and ``<!-- /marker -->``: first cell to
    the set of comma-separated names in the second."""
    text = DOC.read_text()
    found = re.search(rf"<!-- {marker} -->\n(.*?)\n<!-- /{marker} -->", text, re.S)
    assert found, f"docs/architecture.md has no <!-- {marker} --> block"
    table: dict[str, set[str]] = {}
    for line in found.group(1).splitlines()[2:]:  # past the header and its rule
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 2, f"not a two-cell row: {line!r}"
        key, value = cells
        assert key not in table, f"{key} listed twice in {marker}"
        table[key] = (
            set() if value in (TERMINAL, NOTHING) else {v.strip() for v in value.split(",")}
        )
    return table


@pytest.mark.parametrize(
    ("marker", "transitions"),
    [("batch-states", BATCH_TRANSITIONS), ("row-states", ROW_TRANSITIONS)],
)
def test_state_tables_match_the_domain(marker: str, transitions: dict[str, frozenset[str]]) -> None:
    expected = {src.value: {t.value for t in targets} for src, targets in transitions.items()}
    assert _table(marker) == expected


def test_import_table_matches_the_layer_test() -> None:
    """The page lists what a layer may import besides itself; errors and ids are everyone's but
    the SDK's and the simulator's, which import nothing of the server."""
    expected = {
        layer: allowed - {layer} | (BASE if allowed - {layer} else set())
        for layer, allowed in ALLOWED.items()
    }
    assert _table("layer-imports") == expected


def test_layout_names_every_package() -> None:
    text = DOC.read_text()
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    missing = {p for p in packages if not re.search(rf"^\s+{p}/\s", text, re.M)}
    assert not missing, f"docs/architecture.md's layout lacks {sorted(missing)}"


def test_every_named_path_exists() -> None:
    text = DOC.read_text()
    paths = set(re.findall(r"`((?:src|tests|docs)/[^`\s]*)`", text))
    paths |= {f"src/{p}" for p in re.findall(r"`(batchgate/[^`\s]*)`", text)}
    assert paths, "no paths found: the pattern is broken"
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_no_link_outside_the_repository() -> None:
    """Users get the repository only: the page and the README point at docs/, not at design
    notes that live beside the repository."""
    assert "shared/" not in DOC.read_text()
    readme = (ROOT / "README.md").read_text()
    for outside in ("shared/design", "../shared", "/work/"):
        assert outside not in readme, f"README.md points outside the repository: {outside}"
    assert "(docs/architecture.md)" in readme
