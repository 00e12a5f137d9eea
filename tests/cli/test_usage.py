"""``batchgate usage`` against a store (``--data-dir``): a table per tenant (and model), the
JSON of ``GET /v1/usage``, the range and tenant options, and errors that name the option."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from batchgate.cli.main import app
from batchgate.storage.sql import open_store
from tests.storage.test_usage import finish_rows

DAY = 86_400


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    """A store with two tenants' usage: an hour ago, and two days ago."""
    store = open_store(f"sqlite:///{tmp_path / 'batchgate.db'}")
    now = time.time()
    finish_rows(store, "team-a", now - 3600, ("m", "succeeded", 100, 10), ("free", "failed", 0, 0))
    finish_rows(store, "team-b", now - 3600, ("free", "succeeded", 5, 5))
    finish_rows(store, "team-b", now - 2 * DAY, ("m", "succeeded", 7, 7))
    store.close()
    return str(tmp_path)


def _usage(data_dir: str, *args: str) -> Result:
    result = CliRunner().invoke(app, ["usage", "--data-dir", data_dir, *args])
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return result


def test_the_table_shows_the_last_day_per_tenant(data_dir: str) -> None:
    out = _usage(data_dir)
    header, *rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert header == ["tenant", "requests", "succeeded", "failed", "input_tokens",
                      "output_tokens", "cost_usd", "priced"]  # fmt: skip
    assert rows == [
        ["team-a", "2", "1", "1", "100", "10", "0.000010500", "yes"],
        ["team-b", "1", "1", "0", "5", "5", "0.000000000", "no"],
    ]
    assert "Usage from" in out.stderr
    by_model = _usage(data_dir, "--by-model", "--tenant", "team-a").stdout.splitlines()
    assert [line.split("\t")[:3] for line in by_model[1:]] == [
        ["team-a", "free", "1"], ["team-a", "m", "1"],
    ]  # fmt: skip


def test_json_is_the_api_object_and_the_range_is_chosen(data_dir: str) -> None:
    since = str(int(time.time()) - 3 * DAY)
    doc = json.loads(_usage(data_dir, "--json", "--since", since, "--tenant", "team-b").stdout)
    assert doc["object"] == "usage" and doc["start"] == int(since)
    [entry] = doc["data"]
    assert entry["tenant"] == "team-b" and entry["requests"] == 2
    assert entry["cost"] == {"ticks": 7 * 75 + 7 * 300, "usd": "0.000002625", "priced": False}
    old = json.loads(_usage(data_dir, "--json", "--until", "2020-01-01").stdout)
    assert old["data"] == [] and old["end"] == 1_577_836_800


@pytest.mark.parametrize(("args", "named"), [
    (["--since", "last week"], "--since"), (["--since", "200", "--until", "100"], "--until"),
])  # fmt: skip
def test_a_bad_time_names_its_option(data_dir: str, args: list[str], named: str) -> None:
    result = CliRunner().invoke(app, ["usage", "--data-dir", data_dir, *args])
    assert result.exit_code == 1 and named in result.stderr
