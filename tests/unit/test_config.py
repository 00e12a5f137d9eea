"""Configuration loading and model routing (batchgate.config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchgate.config import Config, Limits, UpstreamConfig, single_upstream, with_environment
from batchgate.configfile import load_config
from batchgate.errors import ConfigError
from batchgate.routing import Route, Router

FULL = """
default = "local"
[limits]
max_lines = 1000
max_file_bytes = 209715200
max_errors = 20

[upstreams.local]
url = "http://127.0.0.1:8000/v1/"
concurrency = 256
models = ["llama-3.1-8b", "meta-llama/Llama-3.1-70B"]

[upstreams.openai]
url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
rpm = 5000
tpm = 2000000
timeout = 120
models = ["gpt-4o-mini", "llama-3.1-8b"]

[upstreams.claude]
url = "https://api.anthropic.com/v1"
kind = "anthropic"
timeout = 30.5

[aliases]
"fast" = "local/llama-3.1-8b"
"smart" = "openai:gpt-4o"
"hf" = "meta-llama/Llama-3.1-70B"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "batchgate.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(write(tmp_path, FULL))


def test_load_full_example(config: Config) -> None:
    assert config.default_upstream == "local"
    assert config.limits == Limits(max_lines=1000, max_file_bytes=209715200, max_errors=20)
    local, openai, claude = config.upstreams
    assert local == UpstreamConfig(
        name="local",
        url="http://127.0.0.1:8000/v1",  # trailing slash stripped
        concurrency=256,
        models=("llama-3.1-8b", "meta-llama/Llama-3.1-70B"),
    )
    assert openai.api_key_env == "OPENAI_API_KEY"
    assert (openai.rpm, openai.tpm, openai.timeout) == (5000, 2000000, 120.0)
    assert isinstance(openai.timeout, float)
    assert (openai.concurrency, openai.kind) == (64, "openai")
    assert (claude.kind, claude.timeout, claude.models) == ("anthropic", 30.5, ())
    assert dict(config.aliases) == {
        "fast": "local/llama-3.1-8b",
        "smart": "openai:gpt-4o",
        "hf": "meta-llama/Llama-3.1-70B",
    }
    assert config.upstream("openai") is openai


def test_minimal_file_uses_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[upstreams.a]\nurl = "http://h/v1"\n'))
    assert config.limits == Limits()
    assert config.default_upstream is None
    assert dict(config.aliases) == {}
    assert config.upstreams == (UpstreamConfig(name="a", url="http://h/v1"),)


def test_load_accepts_str_path(tmp_path: Path) -> None:
    assert load_config(str(write(tmp_path, FULL))).default_upstream == "local"


# (id, TOML text, fragments the message must contain besides the file path)
ERROR_CASES: list[tuple[str, str, tuple[str, ...]]] = [
    ("not toml", "default = \n", ("not valid TOML",)),
    ("no upstreams", 'default = "x"\n', ("upstreams",)),
    ("empty upstreams", "[upstreams]\n", ("upstreams", "at least one")),
    (
        "top-level typo",
        '[upstream.a]\nurl = "http://h/v1"\n',
        ("upstream", "unknown key", "upstreams"),
    ),
    (
        "upstream typo",
        '[upstreams.a]\nurl = "http://h/v1"\nconcurrancy = 3\n',
        ("upstreams.a.concurrancy", "Did you mean 'concurrency'"),
    ),
    (
        "limits typo",
        '[limits]\nmax_line = 3\n[upstreams.a]\nurl = "http://h/v1"\n',
        ("limits.max_line", "max_lines"),
    ),
    ("missing url", "[upstreams.a]\nconcurrency = 3\n", ("upstreams.a.url", "required")),
    ("url not string", "[upstreams.a]\nurl = 3\n", ("upstreams.a.url", "string")),
    ("url no scheme", '[upstreams.a]\nurl = "localhost:8000/v1"\n', ("upstreams.a.url", "http://")),
    (
        "concurrency string",
        '[upstreams.a]\nurl = "http://h/v1"\nconcurrency = "8"\n',
        ("upstreams.a.concurrency", "integer"),
    ),
    (
        "concurrency zero",
        '[upstreams.a]\nurl = "http://h/v1"\nconcurrency = 0\n',
        ("upstreams.a.concurrency", ">= 1"),
    ),
    (
        "concurrency bool",
        '[upstreams.a]\nurl = "http://h/v1"\nconcurrency = true\n',
        ("upstreams.a.concurrency",),
    ),
    ("rpm negative", '[upstreams.a]\nurl = "http://h/v1"\nrpm = -1\n', ("upstreams.a.rpm", ">= 0")),
    (
        "tpm float",
        '[upstreams.a]\nurl = "http://h/v1"\ntpm = 1.5\n',
        ("upstreams.a.tpm", "integer"),
    ),
    (
        "timeout zero",
        '[upstreams.a]\nurl = "http://h/v1"\ntimeout = 0\n',
        ("upstreams.a.timeout", "positive"),
    ),
    (
        "timeout string",
        '[upstreams.a]\nurl = "http://h/v1"\ntimeout = "60s"\n',
        ("upstreams.a.timeout",),
    ),
    (
        "kind unknown",
        '[upstreams.a]\nurl = "http://h/v1"\nkind = "gemini"\n',
        ("upstreams.a.kind", "openai"),
    ),
    (
        "models not list",
        '[upstreams.a]\nurl = "http://h/v1"\nmodels = "m"\n',
        ("upstreams.a.models", "array"),
    ),
    (
        "models item",
        '[upstreams.a]\nurl = "http://h/v1"\nmodels = ["m", 3]\n',
        ("upstreams.a.models[1]",),
    ),
    (
        "api_key_env int",
        '[upstreams.a]\nurl = "http://h/v1"\napi_key_env = 1\n',
        ("upstreams.a.api_key_env",),
    ),
    ("upstream not table", 'upstreams = "a"\n', ("upstreams", "table")),
    ("upstream entry not table", '[upstreams]\na = "http://h/v1"\n', ("upstreams.a", "table")),
    ("upstream name slash", '[upstreams."a/b"]\nurl = "http://h/v1"\n', ('upstreams."a/b"', "'/'")),
    ("upstream name colon", '[upstreams."a:b"]\nurl = "http://h/v1"\n', ('upstreams."a:b"',)),
    (
        "api_key literal",
        '[upstreams.a]\nurl = "http://h/v1"\napi_key = "sk-secret"\n',
        ("upstreams.a.api_key", "api_key_env"),
    ),
    (
        "default unknown",
        'default = "nope"\n[upstreams.a]\nurl = "http://h/v1"\n',
        ("default", "'nope'", "a"),
    ),
    (
        "default not string",
        'default = 1\n[upstreams.a]\nurl = "http://h/v1"\n',
        ("default", "string"),
    ),
    ("limits not table", 'limits = 3\n[upstreams.a]\nurl = "http://h/v1"\n', ("limits", "table")),
    (
        "limits zero",
        '[limits]\nmax_lines = 0\n[upstreams.a]\nurl = "http://h/v1"\n',
        ("limits.max_lines",),
    ),
    (
        "limits string",
        '[limits]\nmax_file_bytes = "2MB"\n[upstreams.a]\nurl = "http://h/v1"\n',
        ("limits.max_file_bytes",),
    ),
    (
        "aliases not table",
        'aliases = 1\n[upstreams.a]\nurl = "http://h/v1"\n',
        ("aliases", "table"),
    ),
    (
        "alias target int",
        '[upstreams.a]\nurl = "http://h/v1"\n[aliases]\nfast = 3\n',
        ("aliases.fast", "string"),
    ),
    (
        "alias to alias",
        '[upstreams.a]\nurl = "http://h/v1"\n[aliases]\nfast = "quick"\nquick = "a/m"\n',
        ("aliases.fast", "'quick'", "itself an alias"),
    ),
    (
        "alias unknown prefix no default",
        '[upstreams.a]\nurl = "http://h/v1"\n[aliases]\nfast = "b/m"\n',
        ("aliases.fast", "'b'", "names no upstream"),
    ),
    (
        "alias plain model unroutable",
        '[upstreams.a]\nurl = "http://h/v1"\n[aliases]\nfast = "gpt-x"\n',
        ("aliases.fast", "'gpt-x'"),
    ),
]


@pytest.mark.parametrize(
    ("name", "text", "fragments"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES]
)
def test_config_errors(tmp_path: Path, name: str, text: str, fragments: tuple[str, ...]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    assert "sk-secret" not in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=r"absent\.toml"):
        load_config(path)


@pytest.mark.parametrize(
    "text",
    [
        # an alias whose prefix names no upstream is fine when a default takes plain models
        'default = "a"\n[upstreams.a]\nurl = "http://h/v1"\n[aliases]\nhf = "org/model"\n',
        # ... or when an upstream lists the target exactly
        '[upstreams.a]\nurl = "http://h/v1"\nmodels = ["org/model"]\n[aliases]\nhf = "org/model"\n',
        '[upstreams.a]\nurl = "http://h/v1"\n[aliases]\nx = "a:m"\n',
    ],
)
def test_aliases_that_route_are_accepted(tmp_path: Path, text: str) -> None:
    load_config(write(tmp_path, text))


# --- routing -------------------------------------------------------------------------------------

ROUTES: list[tuple[str, str | None, Route | None]] = [
    ("alias slash", "fast", Route("local", "llama-3.1-8b")),
    ("alias colon", "smart", Route("openai", "gpt-4o")),
    ("alias to listed hf model", "hf", Route("local", "meta-llama/Llama-3.1-70B")),
    ("slash prefix", "openai/gpt-4o", Route("openai", "gpt-4o")),
    ("colon prefix", "openai:gpt-4o", Route("openai", "gpt-4o")),
    ("first separator wins slash", "openai/org:model", Route("openai", "org:model")),
    ("first separator wins colon", "openai:org/model", Route("openai", "org/model")),
    ("colon first, unknown prefix", "org:openai/m", Route("local", "org:openai/m")),
    ("prefix keeps rest", "claude/claude-3-5-sonnet", Route("claude", "claude-3-5-sonnet")),
    ("listed model", "gpt-4o-mini", Route("openai", "gpt-4o-mini")),
    ("listed twice: first in file wins", "llama-3.1-8b", Route("local", "llama-3.1-8b")),
    ("listed hf model", "meta-llama/Llama-3.1-70B", Route("local", "meta-llama/Llama-3.1-70B")),
    ("hf style unknown org to default", "Qwen/Qwen2.5-7B", Route("local", "Qwen/Qwen2.5-7B")),
    ("plain unknown to default", "mystery", Route("local", "mystery")),
    ("empty rest after prefix", "openai/", Route("local", "openai/")),
    ("none to default", None, Route("local", "")),
    ("empty to default", "", Route("local", "")),
]


@pytest.mark.parametrize(("name", "model", "expected"), ROUTES, ids=[c[0] for c in ROUTES])
def test_route(config: Config, name: str, model: str | None, expected: Route | None) -> None:
    router = Router(config)
    assert router.route(model) == expected
    assert router.route(model) == expected  # cached answer is the same


def test_unroutable_without_default(config: Config) -> None:
    no_default = Config(upstreams=config.upstreams, aliases={"fast": "local/x"})
    router = Router(no_default)
    assert router.route("mystery") is None
    assert router.route("Qwen/Qwen2.5-7B") is None
    assert router.route(None) is None
    assert router.route("") is None
    assert router.route("fast") == Route("local", "x")
    assert router.route("gpt-4o-mini") == Route("openai", "gpt-4o-mini")


def test_router_rejects_bad_programmatic_config() -> None:
    upstream = UpstreamConfig("a", "http://h/v1")
    with pytest.raises(ConfigError, match="default"):
        Router(Config(upstreams=(upstream,), default_upstream="b"))
    with pytest.raises(ConfigError, match="itself an alias"):
        Router(Config(upstreams=(upstream,), aliases={"x": "y", "y": "a/m"}))


def test_route_cache_is_bounded(config: Config) -> None:
    router = Router(config)
    for i in range(10_050):
        assert router.route(f"m-{i}") == Route("local", f"m-{i}")
    assert len(router._cache) <= 10_000
    assert router.route("m-10049") == Route("local", "m-10049")


def test_single_upstream() -> None:
    config = single_upstream(
        "http://127.0.0.1:9000/v1/", concurrency=8, rpm=60, tpm=1000, timeout=5
    )
    (upstream,) = config.upstreams
    assert upstream.name == "default" and config.default_upstream == "default"
    assert upstream.url == "http://127.0.0.1:9000/v1"
    assert (upstream.concurrency, upstream.rpm, upstream.tpm, upstream.timeout) == (8, 60, 1000, 5)
    assert upstream.api_key_env == "BATCHGATE_UPSTREAM_API_KEY"
    assert Router(config).route("anything/at:all") == Route("default", "anything/at:all")
    assert Router(config).route("default/m") == Route("default", "m")
    keyless = with_environment(single_upstream("http://h/v1", api_key_env=None), {"X": "1"}, {})
    assert keyless.upstreams[0].api_key is None


def test_upstream_lookup_error_names_known(config: Config) -> None:
    with pytest.raises(ConfigError) as info:
        config.upstream("nope")
    assert "nope" in str(info.value)
    for name in ("local", "openai", "claude"):
        assert name in str(info.value)


# --- secrets -------------------------------------------------------------------------------------


def _key(environ: dict[str, str], name: str | None = "BG_TEST_KEY") -> str | None:
    config = Config(upstreams=(UpstreamConfig("a", "http://h/v1", api_key_env=name),))
    secret = with_environment(config, environ, {}).upstreams[0].api_key
    return None if secret is None else secret.reveal()


def test_api_key_comes_from_the_environment_given_at_the_edge() -> None:
    assert UpstreamConfig("a", "http://h/v1", api_key_env="BG_TEST_KEY").api_key is None
    assert _key({}) is None
    assert _key({"BG_TEST_KEY": "sk-live-123"}) == "sk-live-123"
    assert _key({"BG_TEST_KEY": ""}) is None
    assert _key({"BG_TEST_KEY": "sk-live-123"}, name=None) is None


def test_repr_never_shows_the_key(config: Config) -> None:
    config = with_environment(config, {"OPENAI_API_KEY": "sk-live-secret-456"}, {})
    openai = config.upstream("openai")
    assert openai.api_key is not None and openai.api_key.reveal() == "sk-live-secret-456"
    for text in (repr(openai), str(openai), repr(config), str(openai.api_key), f"{openai.api_key}"):
        assert "sk-live-secret-456" not in text
    assert "OPENAI_API_KEY" in repr(openai) and "api.openai.com" in repr(openai)
