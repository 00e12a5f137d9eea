"""``batchgate budgets`` on a store, ``batchgate run --budget-usd`` as a real process, and
``submit --budget-usd`` / ``status`` against a live server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from batchgate.cli.main import app
from batchgate.domain.budget import EXCEEDED
from batchgate.sim import SimHandle
from tests.api.test_cost import priced_config
from tests.cli.test_run import lines, run, sim_requests
from tests.helpers.procs import Procs, chat_lines, priced_config_file
from tests.helpers.servers import ServerHandle

pytestmark = pytest.mark.timeout(60)


def _cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def _ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_budgets_set_list_rm(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    none = _cli("budgets", "list", *data)  # no store there yet: refused, nothing made
    assert none.exit_code == 1 and "--create" in none.stderr
    assert not (tmp_path / "data" / "batchgate.db").exists()
    said = _ok(_cli("budgets", "set", "team-a", "25", *data, "--create"))
    assert "Tenant 'team-a' has a budget of 25.000000000 USD per month." in said
    _ok(_cli("budgets", "set", "team-b", "2.50", "--period", "day", *data))
    _ok(_cli("budgets", "set", "team-a", "30", "--period", "total", *data))  # replaces
    header, *rows = _ok(_cli("budgets", "list", *data)).splitlines()
    assert header.split("\t") == [
        "tenant", "period", "budget_usd", "spent_usd", "reserved_usd", "reached"
    ]  # fmt: skip
    assert [r.split("\t") for r in rows] == [
        ["team-a", "total", "30.000000000", "0.000000000", "0.000000000", "no"],
        ["team-b", "day", "2.500000000", "0.000000000", "0.000000000", "no"],
    ]
    _ok(_cli("budgets", "rm", "team-b", *data))
    assert len(_ok(_cli("budgets", "list", *data)).splitlines()) == 2
    gone = _cli("budgets", "rm", "team-b", *data)
    assert gone.exit_code == 1 and "budgets list" in gone.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--", "t", "-5"], "Invalid 'USD': expected an amount in USD"),
        (["t", "lots"], "Invalid 'USD'"),
        (["--period", "week", "t", "5"], "--period: expected one of month, day, total"),
        (["bad tenant!", "5"], "tenant"),
    ],
)
def test_budgets_set_refuses_bad_values(tmp_path: Path, args: list[str], said: str) -> None:
    got = _cli("budgets", "set", "--data-dir", str(tmp_path / "data"), "--create", *args)
    assert got.exit_code == 1 and said in got.stderr, got.stderr
    _ok(_cli("budgets", "set", "--data-dir", str(tmp_path / "data"), "--create", "u", "1"))
    _ok(_cli("budgets", "rm", "u", "--data-dir", str(tmp_path / "data")))
    listed = _ok(_cli("budgets", "list", "--data-dir", str(tmp_path / "data")))
    assert len(listed.splitlines()) == 1  # the header alone: nothing was set


def test_run_with_a_budget_stops_and_says_so(procs: Procs, tmp_path: Path) -> None:
    _, upstream = procs.simulator()
    config = priced_config_file(tmp_path / "bg.toml", upstream)
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(chat_lines(100))
    budget = "0.000200"  # 200,000 ticks: a few dozen of these requests
    done = run(procs, str(src), "-o", str(out), "--config", str(config), "--budget-usd", budget)
    assert done.rc == 3, procs.logs()  # the batch ended with failed lines (budget_exceeded)
    assert "budget    a budget of 0.000200000 USD (reached)" in done.stdout, done.stdout
    got = lines(out)
    stopped = [r for r in got if r["error"] is not None]
    assert stopped and {r["error"]["code"] for r in stopped} == {EXCEEDED}
    sent = [r for r in got if r["error"] is None]
    assert sim_requests(upstream) == len(sent)
    costs = [
        r["response"]["body"]["usage"]["prompt_tokens"] * 1000
        + r["response"]["body"]["usage"]["completion_tokens"] * 2000
        for r in sent
    ]
    assert 200_000 <= sum(costs) < 200_000 + max(costs)
    other = run(procs, str(src), "-o", str(out), "--config", str(config), "--budget-usd", "1")
    assert other.rc == 2 and "--fresh" in other.stderr, other.stderr
    bad = run(procs, str(src), "-o", str(out), "--config", str(config), "--budget-usd", "x")
    assert bad.rc == 2 and "Invalid '--budget-usd'" in bad.stderr, bad.stderr


def test_submit_with_a_budget_and_status_shows_it(
    make_server: Callable[..., ServerHandle], sim: SimHandle, tmp_path: Path
) -> None:
    srv = make_server(config=priced_config(sim))
    env = {"BATCHGATE_URL": srv.url}
    src = tmp_path / "in.jsonl"
    src.write_bytes(chat_lines(5))
    bid = _ok(_cli("submit", str(src), "--budget-usd", "0", env=env)).strip()
    srv.wait_for(bid)
    shown = _ok(_cli("status", bid, env=env))
    assert "budget    $0.000000000 (reached" in shown and "cost      $0.000000000" in shown
    raw = json.loads(_ok(_cli("status", bid, "--json", env=env)))
    assert raw["request_counts"] == {"total": 5, "completed": 0, "failed": 5}
    assert sim.stats()["requests"] == 0
