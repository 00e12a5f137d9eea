"""``batchgate keys`` and open mode, with real processes: the key alone on the last line, a list
that shows no secret, ``serve`` refusing a non-loopback address without keys (and warning on
loopback), revocation against a running server, and a key that never reaches a log or a file."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from typer.testing import CliRunner, Result

from batchgate.cli.keys import is_loopback
from batchgate.cli.main import app
from batchgate.domain.keys import hash_secret
from batchgate.sim import SimHandle
from tests.helpers.procs import Procs, batchgate_argv, chat_lines, free_port, submit

pytestmark = pytest.mark.timeout(60)

SECRET = re.compile(r"^bg_[A-Za-z0-9_-]{43}$")


def _keys(*args: str) -> Result:
    result = CliRunner().invoke(app, ["keys", *args])
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return result


def _create_in_a_shell(data_dir: Path, *args: str) -> str:
    """``$(batchgate keys create … | tail -1)``, as the README says."""
    argv = shlex.join(
        batchgate_argv("keys", "create", *args, "--data-dir", str(data_dir), "--create")
    )
    done = subprocess.run(
        ["sh", "-c", f"{argv} | tail -1"], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    made = _keys(
        "create", "alice", "--tenant", "team-a", "--admin", "--data-dir", data, "--create"
    ).stdout
    *description, secret = made.splitlines()
    assert SECRET.match(secret) and secret not in "\n".join(description)
    assert "team-a" in description[0] and "admin" in description[0]
    listed = _keys("list", "--data-dir", data).stdout
    header, row = listed.splitlines()
    assert header.split("\t") == ["id", "name", "tenant", "prefix", "admin", "created", "revoked"]
    kid, name, tenant, prefix, admin, _, revoked = row.split("\t")
    assert (name, tenant, admin, revoked) == ("alice", "team-a", "yes", "-")
    assert kid.startswith("key_") and secret.startswith(prefix.rstrip("…"))
    assert secret not in listed and hash_secret(secret) not in listed
    _keys("revoke", kid, "--data-dir", data)
    assert _keys("list", "--data-dir", data).stdout.splitlines()[1].split("\t")[6] != "-"
    gone = CliRunner().invoke(app, ["keys", "revoke", "alice", "--data-dir", data])
    assert gone.exit_code == 1 and "keys list" in gone.stderr
    bad = CliRunner().invoke(app, ["keys", "create", "key_x", "--data-dir", data])
    assert bad.exit_code == 1 and "Invalid name" in bad.stderr


def test_admin_commands_act_on_an_existing_store_and_say_which(tmp_path: Path) -> None:
    """Run where no store is, ``keys``, ``budgets`` and ``usage`` refuse and make nothing
    (a key in a stray ./data would leave the real server open); they read BATCHGATE_DATA_DIR
    and name the store they act on."""
    stray, real = tmp_path / "elsewhere", tmp_path / "real"
    for argv in (["keys", "create", "bob"], ["keys", "list"], ["budgets", "list"], ["usage"]):
        got = CliRunner().invoke(app, [*argv, "--data-dir", str(stray)])
        assert got.exit_code == 1 and "No batchgate store in" in got.stderr, (argv, got.stderr)
        assert "--create" in got.stderr
    assert not (stray / "batchgate.db").exists()
    made = CliRunner().invoke(app, ["keys", "create", "bob", "--create"],
                              env={"BATCHGATE_DATA_DIR": str(real)})  # fmt: skip
    assert made.exit_code == 0, made.output
    assert f"store: {(real / 'batchgate.db').resolve()}" in made.stderr
    listed = CliRunner().invoke(app, ["keys", "list"], env={"BATCHGATE_DATA_DIR": str(real)})
    assert listed.exit_code == 0 and "bob" in listed.stdout


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.1.2.3", False),
     ("192.168.0.7", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serve_without_keys_refuses_a_public_address(procs: Procs, tmp_path: Path) -> None:
    argv = batchgate_argv(
        "serve", "--host", "0.0.0.0", "--port", str(free_port()), "--data-dir",
        str(tmp_path / "data"), "--upstream", "http://127.0.0.1:9/v1",
    )  # fmt: skip
    proc = procs.spawn("serve", argv)
    assert proc.popen.wait(timeout=30) != 0
    assert "batchgate keys create" in proc.stderr_path.read_text(), proc.logs()


def test_serve_without_keys_on_loopback_runs_open_and_says_so(
    procs: Procs, tmp_path: Path, sim: SimHandle
) -> None:
    proc = procs.serve("--data-dir", str(tmp_path / "data"), "--upstream", sim.url)
    log = proc.stderr_path.read_text()
    assert "OPEN MODE" in log and "anyone on this machine" in log, proc.logs()
    r = httpx.get(f"http://127.0.0.1:{proc.port}/v1/files", headers={"x-api-key": "whatever"})
    assert r.status_code == 200


def test_revoking_every_key_closes_the_server_unless_it_runs_with_open(
    procs: Procs, tmp_path: Path, sim: SimHandle
) -> None:
    """Once keys were made, revoking the last one closes the server (it said so at start);
    it does not reopen it to anyone as tenant "". ``--open`` runs it open on purpose."""
    data = str(tmp_path / "data")
    _keys("create", "alice", "--data-dir", data, "--create")
    _keys("revoke", "alice", "--data-dir", data)
    closed = procs.serve("--data-dir", data, "--upstream", sim.url)
    log = closed.stderr_path.read_text()
    assert "CLOSED" in log and "OPEN MODE" not in log, closed.logs()
    r = httpx.get(f"http://127.0.0.1:{closed.port}/v1/files")
    assert r.status_code == 401 and r.json()["error"]["code"] == "all_keys_revoked"
    opened = procs.serve("--data-dir", data, "--upstream", sim.url, "--open", "--no-worker")
    assert "OPEN MODE" in opened.stderr_path.read_text(), opened.logs()
    assert httpx.get(f"http://127.0.0.1:{opened.port}/v1/files").status_code == 200
    public = procs.spawn("serve", batchgate_argv(
        "serve", "--open", "--host", "0.0.0.0", "--port", str(free_port()), "--data-dir", data,
        "--upstream", sim.url,
    ))  # fmt: skip
    assert public.popen.wait(timeout=30) != 0
    assert "--open runs without keys" in public.stderr_path.read_text(), public.logs()


def test_a_key_works_is_revoked_at_once_and_never_leaks(
    procs: Procs, tmp_path: Path, sim: SimHandle
) -> None:
    data = tmp_path / "data"
    secret = _create_in_a_shell(data, "alice")
    assert SECRET.match(secret)
    proc = procs.serve("--data-dir", str(data), "--upstream", sim.url, "--log-level", "debug")
    base = f"http://127.0.0.1:{proc.port}"
    assert "OPEN MODE" not in proc.stderr_path.read_text()

    client = openai.OpenAI(base_url=base + "/v1", api_key=secret, max_retries=0, timeout=30)
    bid = submit(client, chat_lines(2))
    procs.wait_until(lambda: client.batches.retrieve(bid).status == "completed", "done", 30)
    output = client.batches.retrieve(bid).output_file_id
    assert output and client.files.content(output).text.count("\n") == 2
    ant = anthropic.Anthropic(base_url=base, api_key=secret, max_retries=0, timeout=30)
    params = {"model": "sim-model", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}
    ant.messages.batches.create(requests=[{"custom_id": "a", "params": params}])
    seen = [httpx.get(f"{base}/v1/messages/batches", headers={"x-api-key": secret})]
    seen.append(httpx.get(f"{base}/v1/files", headers={"authorization": "Bearer " + secret[:-1]}))
    assert [r.status_code for r in seen] == [200, 401]

    _keys("revoke", "alice", "--data-dir", str(data))  # while the server runs
    with pytest.raises(openai.AuthenticationError):
        client.batches.retrieve(bid)
    with pytest.raises(anthropic.AuthenticationError):
        ant.messages.batches.list()
    client.close()
    ant.close()

    for r in seen:
        assert secret not in r.text and secret not in str(r.headers)
    leaks = [p for p in (*procs.log_dir.rglob("*"), *data.rglob("*"))
             if p.is_file() and secret.encode() in p.read_bytes()]  # fmt: skip
    assert leaks == [] and "auth_refused" in proc.stderr_path.read_text()
