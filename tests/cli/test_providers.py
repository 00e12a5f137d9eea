"""``batchgate providers``: the listing (never a key) and the reachability check, against the live
simulator and a dead port, from ``--upstream NAME=URL`` flags and from a config file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from batchgate.cli.main import app
from batchgate.sim import SimHandle
from tests.helpers.procs import batchgate_argv, free_port

pytestmark = pytest.mark.timeout(60)

SECRET = "sk-test-never-shown-0123456789"


def _providers(*args: str) -> Result:
    return CliRunner().invoke(app, ["providers", *args])


def _lines(result: Result) -> dict[str, list[str]]:
    """Data rows of the tab-separated table, by provider name."""
    header, *rows = [line.split("\t") for line in result.stdout.splitlines() if "\t" in line]
    assert header[0] == "name" and header[-1] == "check"
    return {row[0].removesuffix(" (default)"): row for row in rows}


def test_live_simulator_is_ok_and_the_key_stays_secret(
    sim: SimHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIM_KEY", SECRET)
    result = _providers(
        "--upstream", f"sim={sim.url}", "--upstream", f"again={sim.url}/", "--api-key-env",
        "SIM_KEY", "--concurrency", "7", "--rpm", "60",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    rows = _lines(result)
    assert list(rows) == ["sim", "again"]
    name, kind, url, client, key, concurrency, rpm, tpm, models, prices, check = rows["sim"]
    assert name == "sim (default)" and kind == "openai" and url == sim.url and client == "fast"
    assert key == "$SIM_KEY set" and (concurrency, rpm, tpm) == ("7", "60", "-")
    assert (models, prices, check) == ("-", "-", "ok")
    assert rows["again"][-1] == "ok"


def test_dead_port_fails_with_the_reason(sim: SimHandle) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    result = _providers("--upstream", f"live={sim.url}", "--upstream", f"dead={dead}")
    assert result.exit_code == 1, result.output
    rows = _lines(result)
    assert rows["live"][-1] == "ok"
    assert rows["dead"][-1].startswith("unreachable: ")
    assert "refused" in rows["dead"][-1].lower()
    assert "cannot serve requests: dead" in result.stderr


def test_config_file_lists_kinds_models_prices_and_http_status(
    sim: SimHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    config = tmp_path / "batchgate.toml"
    config.write_text(f"""
[providers.claude]
kind = "anthropic"
url = "{sim.url}"
api_key_env = "NO_SUCH_KEY_VAR"
models = ["claude-x"]
prices = {{ "claude-x" = {{ input = 3, output = 15 }} }}
batch_discount = 0.5

[providers.missing]
url = "{sim.base_url}/nowhere"
""")
    result = _providers("--config", str(config))
    assert result.exit_code == 1, result.output
    rows = _lines(result)
    claude = rows["claude"]
    assert claude[1:5] == ["anthropic", sim.url, "fast", "$NO_SUCH_KEY_VAR not set"]
    assert claude[8:] == ["claude-x", "claude-x=3/15 USD/Mtok x0.5", "ok"]
    assert rows["missing"][-1] == "HTTP 404"


def test_no_check_lists_only_and_a_bad_flag_names_itself() -> None:
    result = _providers("--upstream", "x=http://127.0.0.1:9/v1", "--no-check")
    assert result.exit_code == 0, result.output
    assert _lines(result)["x"][-1] == "not checked"
    result = _providers("--upstream", "a:b=http://h/v1")
    assert result.exit_code == 2 and "NAME=URL" in result.stderr


def test_the_real_command_is_registered(sim: SimHandle) -> None:
    import subprocess

    done = subprocess.run(
        batchgate_argv("providers", "--upstream", sim.url),
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "default (default)\topenai\t" in done.stdout and done.stdout.rstrip().endswith("ok")
