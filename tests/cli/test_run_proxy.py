"""``batchgate run`` against an https provider reached through an HTTP CONNECT proxy: real
processes and sockets. The config file names the provider's CA (``ca_file``); the proxy comes
from HTTPS_PROXY in the process environment, resolved by the CLI. Both clients."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.procs import Procs, batchgate_argv, chat_lines
from tests.helpers.proxy import ConnectProxy
from tests.helpers.tls import TlsUpstream

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsUpstream]:
    with TlsUpstream(tmp_path_factory.mktemp("tls")) as upstream:
        yield upstream


@pytest.mark.parametrize("client", ["fast", "aiohttp"])
def test_run_through_a_proxy_to_an_https_provider(
    procs: Procs, tmp_path: Path, tls: TlsUpstream, client: str
) -> None:
    config = tmp_path / "batchgate.toml"
    config.write_text(
        f'default = "remote"\n[providers.remote]\nurl = "{tls.url}"\n'
        f'ca_file = "{tls.ca_file}"\nclient = "{client}"\nconcurrency = 4\n'
    )
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(chat_lines(20))
    env = {"HTTPS_PROXY": "", "NO_PROXY": "", "no_proxy": ""}
    with ConnectProxy() as proxy:
        env["https_proxy"] = proxy.url  # the lower-case name wins, as in curl and urllib
        argv = batchgate_argv("run", str(src), "-o", str(out), "--config", str(config))
        run = procs.spawn("run", argv, env=env)
        try:
            rc = run.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise procs.fail("batchgate run did not end within 60s") from None
        tunnels, targets = proxy.tunnels, list(proxy.targets)
    assert rc == 0, procs.logs()
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["custom_id"] for r in lines] == [f"req-{i}" for i in range(20)]
    assert all(r["response"]["status_code"] == 200 for r in lines), lines[0]
    # One per connection, at most the concurrency, and one for the start-up check (GET /models
    # through the same proxy, trusting the same CA: it passed, or the run would have refused).
    assert 2 <= tunnels <= 4 + 1
    assert set(targets) == {tls.url.split("/")[2]}
