"""The README cannot drift from the code: its checked Python blocks run against a live server,
and its CLI reference is what the commands generate."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from batchgate.cli import docs
from tests.helpers.procs import chat_lines
from tests.helpers.servers import ServerHandle

README = Path(__file__).resolve().parents[1] / "README.md"
CHECKED = re.compile(r"<!-- checked: [^>]*-->\n```python\n(.*?)```", re.S)
DOCUMENTED_URL = "http://127.0.0.1:8080"


def _blocks() -> list[str]:
    return CHECKED.findall(README.read_text())


# What each checked block prints when every request succeeds, in README order.
PRINTS = [
    "q2 Simulated reply to: Say 2",
    "q2 Simulated reply to: Say 2",
    "req-2 True",
    "completed=3",
    "q1 succeeded",
]


def test_the_readme_has_checked_blocks() -> None:
    blocks = _blocks()
    assert len(blocks) == len(PRINTS)
    assert all(DOCUMENTED_URL in b for b in blocks)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("n", range(len(_blocks())))
def test_a_readme_python_block_runs(
    n: int, server: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run as written, in a directory holding the ``requests.jsonl`` the text names, with only
    the server address changed to the test server's."""
    (tmp_path / "requests.jsonl").write_bytes(chat_lines(3, model="llama-3.1-8b"))
    monkeypatch.chdir(tmp_path)
    code = _blocks()[n].replace(DOCUMENTED_URL, server.url)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README block {n}", "exec"), {"__name__": "__main__"})
    assert PRINTS[n] in out.getvalue(), out.getvalue()


def test_the_cli_reference_is_current() -> None:
    text = README.read_text()
    assert docs.replace_block(text, docs.reference()) == text, (
        "README's CLI reference is stale: run `python -m batchgate.cli.docs --write README.md`"
    )
