"""The network keys of an upstream (client, proxy, ca_file, verify, connect_timeout): how the
file states them, what a bad value says, and what the environment supplies at the edge."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from batchgate.config import Config, UpstreamConfig, with_environment
from batchgate.configfile import load_config
from batchgate.errors import ConfigError


def write(tmp_path: Path, body: str, url: str = "https://h/v1") -> Path:
    path = tmp_path / "batchgate.toml"
    path.write_text(f'[providers.a]\nurl = "{url}"\n{body}')
    return path


def upstream(tmp_path: Path, body: str, url: str = "https://h/v1") -> UpstreamConfig:
    return load_config(write(tmp_path, body, url)).upstreams[0]


def test_defaults_pick_the_client_by_scheme(tmp_path: Path) -> None:
    secure = upstream(tmp_path, "")
    assert (secure.http_client, secure.proxy, secure.ca_file) == ("aiohttp", None, None)
    assert (secure.verify, secure.connect_timeout, secure.timeout) == (True, 10.0, 600.0)
    assert upstream(tmp_path, "", url="http://h/v1").http_client == "fast"
    assert upstream(tmp_path, 'client = "fast"').http_client == "fast"
    assert upstream(tmp_path, 'client = "aiohttp"', url="http://h/v1").http_client == "aiohttp"


def test_every_key_is_read(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    body = (
        f'client = "fast"\nproxy = "http://u:pw@proxy:3128"\nca_file = "{ca}"\n'
        "verify = false\nconnect_timeout = 2.5\ntimeout = 30\n"
    )
    got = upstream(tmp_path, body)
    assert (got.client, got.proxy, got.ca_file) == ("fast", "http://u:pw@proxy:3128", str(ca))
    assert (got.verify, got.connect_timeout, got.timeout) == (False, 2.5, 30.0)
    assert "pw" not in repr(got) and "http://u:***@proxy:3128" in repr(got)


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ('client = "curl"', ("providers.a.client", "fast, aiohttp", "'curl'")),
        ('proxy = "socks5://p:1080"', ("providers.a.proxy", "http://")),
        ('proxy = "http://u:hunter2@"', ("providers.a.proxy",)),
        ("verify = 0", ("providers.a.verify", "true or false", "integer")),
        ("connect_timeout = 0", ("providers.a.connect_timeout", "positive")),
        ('ca_file = "/no/such/ca.pem"', ("providers.a.ca_file", "cannot read", "/no/such")),
        ("ca_file = 3", ("providers.a.ca_file", "string")),
        ("conect_timeout = 3", ("providers.a.conect_timeout", "Did you mean 'connect_timeout'")),
    ],
)
def test_bad_values_name_file_and_key(tmp_path: Path, body: str, fragments: tuple[str]) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: providers.a.")
    for fragment in fragments:
        assert fragment in message, message
    assert "hunter2" not in message


def test_ca_file_that_is_not_pem(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"providers\.a\.ca_file: .* holds no PEM"):
        load_config(write(tmp_path, f'ca_file = "{junk}"'))


# -- with_environment: what the CLI fills in from os.environ ------------------------------------


def resolved(url: str, proxies: dict[str, str], proxy: str | None = None) -> str | None:
    config = Config(upstreams=(UpstreamConfig("a", url, proxy=proxy),))
    return with_environment(config, {}, proxies).upstreams[0].proxy


def test_proxy_follows_the_scheme_and_no_proxy() -> None:
    proxies = {"https": "http://p:3128", "http": "http://q:8080"}
    assert resolved("https://api.example.com/v1", proxies) == "http://p:3128"
    assert resolved("http://gpu-box:8000/v1", proxies) == "http://q:8080"
    assert resolved("https://api.example.com/v1", {}) is None
    no = {**proxies, "no": "localhost,.example.com"}
    assert resolved("https://api.example.com/v1", no) is None
    assert resolved("https://example.org/v1", no) == "http://p:3128"
    assert resolved("http://localhost:8000/v1", no) is None
    assert resolved("https://h/v1", {**proxies, "no": "*"}) is None


def test_a_configured_proxy_wins_and_host_port_gets_a_scheme() -> None:
    assert resolved("https://h/v1", {"https": "http://env:1"}, proxy="http://file:2") == (
        "http://file:2"
    )
    assert resolved("https://h/v1", {"https": "corp-proxy:3128"}) == "http://corp-proxy:3128"


def test_a_proxy_we_cannot_speak_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"'a'.*https_proxy.*only http:// proxies") as info:
        resolved("https://h/v1", {"https": "socks5://u:secret@p:1080"})
    assert "secret" not in str(info.value)
