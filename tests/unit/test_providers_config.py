"""Providers as configuration: ``[providers]``, prices, batch discount, ``--upstream NAME=URL``."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchgate.config import (
    Config,
    Price,
    Secret,
    UpstreamConfig,
    flag_upstreams,
    with_environment,
)
from batchgate.configfile import load_config
from batchgate.domain.cost import cost_object, usd
from batchgate.domain.records import Batch
from batchgate.errors import ConfigError
from batchgate.routing import Route, Router

PRICED = """
default = "local"

[providers.local]
url = "http://127.0.0.1:8000/v1"
models = ["llama-3.1-8b"]
prices = { "llama-3.1-8b" = { input = 0.10, output = 0.20 }, "*" = { input = 0.5, output = 1.5 } }

[providers.openai]
url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
prices = { "gpt-4o-mini" = { input = 0.15, output = 0.60 } }
batch_discount = 0.5

[providers.free]
url = "http://127.0.0.1:9000/v1"

[aliases]
"fast" = "openai:gpt-4o-mini"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "batchgate.toml"
    path.write_text(text)
    return path


def test_prices_and_discount_are_read(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, PRICED))
    local, openai, free = config.upstreams
    assert dict(local.prices) == {"llama-3.1-8b": Price(0.10, 0.20), "*": Price(0.5, 1.5)}
    assert local.batch_discount == 1.0 and openai.batch_discount == 0.5
    assert free.prices == () and free.ticks_per_token("m") is None
    # 1 tick = 1e-9 USD: USD per million tokens x 1000 = ticks per token.
    assert local.ticks_per_token("llama-3.1-8b") == (100.0, 200.0)
    assert local.ticks_per_token("other") == (500.0, 1500.0)  # "*"
    assert openai.ticks_per_token("gpt-4o-mini") == (75.0, 300.0)  # discount applied
    assert openai.ticks_per_token("gpt-4o") is None  # no "*": unpriced


def test_routes_carry_the_prices(tmp_path: Path) -> None:
    router = Router(load_config(write(tmp_path, PRICED)))
    assert router.route("fast") == Route("openai", "gpt-4o-mini", (75.0, 300.0))
    assert router.route("openai:gpt-4o-mini") == Route("openai", "gpt-4o-mini", (75.0, 300.0))
    assert router.route("llama-3.1-8b") == Route("local", "llama-3.1-8b", (100.0, 200.0))
    assert router.route("whatever") == Route("local", "whatever", (500.0, 1500.0))
    assert router.route("free/m") == Route("free", "m", None)


def test_upstreams_is_a_synonym(tmp_path: Path) -> None:
    text = PRICED.replace("[providers.", "[upstreams.")
    assert load_config(write(tmp_path, text)) == load_config(write(tmp_path, PRICED))


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            '[providers.a]\nurl = "http://h/v1"\n[upstreams.b]\nurl = "http://h/v1"\n',
            ("upstreams", "synonym", "not both"),
        ),
        (
            '[providers.a]\nurl = "http://h/v1"\nprices = { m = { input = -1, output = 1 } }\n',
            ("providers.a.prices.m.input", ">= 0", "-1"),
        ),
        (
            '[providers.a]\nurl = "http://h/v1"\nprices = { m = { input = 1, outptu = 1 } }\n',
            ("providers.a.prices.m.outptu", "unknown key", "'output'"),
        ),
        (
            '[providers.a]\nurl = "http://h/v1"\nprices = { m = { input = 1 } }\n',
            ("providers.a.prices.m.output", "is required"),
        ),
        (
            '[providers.a]\nurl = "http://h/v1"\nprices = { "*" = { input = "1", output = 1 } }\n',
            ('providers.a.prices."*".input', "price"),
        ),
        (
            '[providers.a]\nurl = "http://h/v1"\nprices = ["m"]\n',
            ("providers.a.prices", "must be a table"),
        ),
        (
            '[providers.a]\nurl = "http://h/v1"\nbatch_discount = 1.5\n',
            ("providers.a.batch_discount", "between 0 and 1", "1.5"),
        ),
        (
            '[providers.a]\nurl = "http://h/v1"\nbatch_discunt = 0.5\n',
            ("providers.a.batch_discunt", "Did you mean 'batch_discount'"),
        ),
        ("[providers]\n", ("providers", "at least one")),
        ('[providers."a:b"]\nurl = "http://h/v1"\n', ('providers."a:b"', "no '/' or ':'")),
    ],
)
def test_provider_errors_are_located(tmp_path: Path, text: str, fragments: tuple[str, ...]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message, message


def test_named_upstream_flags() -> None:
    config = flag_upstreams(
        ["local=http://127.0.0.1:8000/v1/", "oai=https://api.openai.com/v1"],
        concurrency=8, rpm=60, tpm=1000, timeout=5, api_key_env="K",
    )  # fmt: skip
    local, oai = config.upstreams
    assert (local.name, local.url, oai.name, oai.url) == (
        "local", "http://127.0.0.1:8000/v1", "oai", "https://api.openai.com/v1",
    )  # fmt: skip
    for u in (local, oai):  # the limits and key variable apply to each
        assert (u.concurrency, u.rpm, u.tpm, u.timeout, u.api_key_env) == (8, 60, 1000, 5, "K")
    assert config.default_upstream == "local"  # the first one given
    router = Router(config)
    assert router.route("oai:gpt-4o") == Route("oai", "gpt-4o")
    assert router.route("gpt-4o") == Route("local", "gpt-4o")


def test_plain_upstream_flag_is_named_default() -> None:
    config = flag_upstreams(["http://127.0.0.1:8000/v1?a=b"])
    (only,) = config.upstreams
    assert (only.name, only.url, config.default_upstream) == (
        "default", "http://127.0.0.1:8000/v1?a=b", "default",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("specs", "fragment"),
    [
        (["a=http://h/v1", "a=http://g/v1"], "more than once"),
        (["a:b=http://h/v1"], "NAME=URL"),
        (["a=ftp://h"], "http://"),
        ([], "No upstream"),
    ],
)
def test_bad_upstream_flags(specs: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        flag_upstreams(specs)
    assert fragment in str(info.value)


def test_repr_never_holds_the_key() -> None:
    upstream = UpstreamConfig("a", "http://h/v1", api_key_env="MY_KEY", prices={"m": Price(1, 2)})
    config = with_environment(Config(upstreams=(upstream,)), {"MY_KEY": "sk-secret-123"}, {})
    (upstream,) = config.upstreams
    assert upstream.api_key == Secret("sk-secret-123")
    assert "sk-secret" not in repr(upstream) and "sk-secret" not in str(upstream)
    assert "MY_KEY" in repr(upstream) and "prices={'m': Price(input=1, output=2)}" in repr(upstream)


@pytest.mark.parametrize(
    ("ticks", "text"),
    [
        (0, "0.000000000"),
        (1, "0.000000001"),
        (123_000, "0.000123000"),
        (2_500_000_001, "2.500000001"),
    ],
)
def test_usd_is_exact(ticks: int, text: str) -> None:
    assert usd(ticks) == text


def _batch(**counts: int) -> Batch:
    return Batch(id="batch_x", dialect="openai", endpoint="/v1/chat/completions",
                 status="in_progress", created_at=0, expires_at=1, **counts)  # fmt: skip


def test_cost_object_says_when_unpriced() -> None:
    assert cost_object(_batch(cost_ticks=5, unpriced=0)) == {
        "ticks": 5, "usd": "0.000000005", "priced": True,
    }  # fmt: skip
    assert cost_object(_batch(cost_ticks=0, unpriced=3))["priced"] is False
