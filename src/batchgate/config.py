"""Configuration as a value, read once at the edge (CLI or app factory), and model routing.

A TOML file declares providers (``[providers.NAME]``, or its synonym ``[upstreams.NAME]``; not
both in one file), aliases and limits; keys are checked (a typo is an error)::

    default = "local"              # optional default upstream
    [limits]                        # optional
    max_lines = 50000
    max_file_bytes = 209715200
    max_errors = 100

    [providers.local]
    url = "http://127.0.0.1:8000/v1"
    concurrency = 256
    models = ["llama-3.1-8b"]

    [providers.openai]
    url = "https://api.openai.com/v1"
    api_key_env = "OPENAI_API_KEY"  # the key itself never goes in the file
    rpm = 5000
    tpm = 2000000
    timeout = 120
    prices = { "gpt-4o-mini" = { input = 0.15, output = 0.60 }, "*" = { input = 2.5, output = 10 } }
    batch_discount = 0.5

    [aliases]
    "fast" = "local/llama-3.1-8b"

Upstream keys: ``url`` (required, base URL including /v1), ``kind`` ("openai" or "anthropic"),
``api_key_env``, ``concurrency`` (default 64), ``rpm`` and ``tpm`` (0 = unlimited), ``timeout``
(seconds, default 600), ``models`` (exact names this upstream serves), ``prices`` (per model,
USD per million input and output tokens; ``"*"`` prices the provider's other models; a model
without a price costs nothing and is reported as unpriced), ``batch_discount`` (a factor in
[0, 1] applied to every price of the provider, default 1.0).

A request's ``model`` is routed by, in order: an alias (exact name) → its target; a
``name/model`` or ``name:model`` prefix naming an upstream (split at the first ``/`` or ``:``)
→ that upstream with the prefix stripped; an upstream whose ``models`` lists the exact name
(first in file order); the default upstream with the model unchanged; otherwise unroutable.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchgate.domain.cost import TICKS_PER_USD
from batchgate.errors import ConfigError

__all__ = [
    "Config",
    "Limits",
    "Price",
    "Route",
    "Router",
    "UpstreamConfig",
    "flag_upstreams",
    "load_config",
    "single_upstream",
]

UPSTREAM_KINDS = ("openai", "anthropic")
_ROUTE_CACHE_SIZE = 10_000
_TICKS_PER_TOKEN = TICKS_PER_USD / 1_000_000  # a price per million tokens -> ticks per token


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens, as price lists state them."""

    input: float
    output: float


@dataclass(frozen=True, slots=True, repr=False)
class UpstreamConfig:
    """One upstream server. Only the *name* of the env var holding its key is stored."""

    name: str
    url: str  # base URL including /v1, without a trailing slash
    kind: str = "openai"
    api_key_env: str | None = None
    concurrency: int = 64
    rpm: int = 0  # 0 = unlimited
    tpm: int = 0
    timeout: float = 600.0  # seconds per upstream request
    models: tuple[str, ...] = ()
    # (model or "*", price) pairs in file order, so the value stays hashable; a mapping given
    # here is stored as its pairs.
    prices: tuple[tuple[str, Price], ...] = ()
    batch_discount: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", self.url.rstrip("/"))
        object.__setattr__(self, "models", tuple(self.models))
        prices = self.prices.items() if isinstance(self.prices, Mapping) else self.prices
        object.__setattr__(self, "prices", tuple(prices))

    def price(self, model: str) -> Price | None:
        """The list price of ``model`` (exact name, else ``"*"``); None when it has none."""
        table = dict(self.prices)
        return table.get(model, table.get("*"))

    def ticks_per_token(self, model: str) -> tuple[float, float] | None:
        """(input, output) ticks per token for ``model``, the batch discount applied."""
        price = self.price(model)
        if price is None:
            return None
        factor = _TICKS_PER_TOKEN * self.batch_discount
        return round(price.input * factor, 6), round(price.output * factor, 6)

    def api_key(self) -> str | None:
        """Read the key from the environment at call time; None when unset or empty."""
        if not self.api_key_env:
            return None
        return os.environ.get(self.api_key_env) or None

    def __repr__(self) -> str:
        return (
            f"UpstreamConfig(name={self.name!r}, url={self.url!r}, kind={self.kind!r}, "
            f"api_key_env={self.api_key_env!r}, concurrency={self.concurrency}, rpm={self.rpm}, "
            f"tpm={self.tpm}, timeout={self.timeout}, models={self.models!r}, "
            f"prices={dict(self.prices)!r}, batch_discount={self.batch_discount})"
        )


@dataclass(frozen=True, slots=True)
class Route:
    upstream: str  # UpstreamConfig.name
    model: str  # the model name to send upstream (prefix stripped)
    # (input, output) ticks per token, discount applied; None when the model has no price.
    ticks: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    max_lines: int = 50_000
    max_file_bytes: int = 200 * 1024 * 1024
    max_errors: int = 100


@dataclass(frozen=True, slots=True)
class Config:
    upstreams: tuple[UpstreamConfig, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)  # alias -> "name/model" | model
    default_upstream: str | None = None
    limits: Limits = Limits()

    def upstream(self, name: str) -> UpstreamConfig:
        for upstream in self.upstreams:
            if upstream.name == name:
                return upstream
        known = ", ".join(u.name for u in self.upstreams) or "none"
        raise ConfigError(f"Unknown upstream {name!r}; configured upstreams: {known}.")


def single_upstream(
    url: str,
    *,
    concurrency: int = 64,
    rpm: int = 0,
    tpm: int = 0,
    timeout: float = 600.0,
    api_key_env: str | None = "BATCHGATE_UPSTREAM_API_KEY",
) -> Config:
    """A config of one upstream named "default" that every model routes to."""
    return flag_upstreams(
        [url], concurrency=concurrency, rpm=rpm, tpm=tpm, timeout=timeout,
        api_key_env=api_key_env,
    )  # fmt: skip


def _flag(spec: str) -> tuple[str, str]:
    """``NAME=URL`` or a plain ``URL`` (named "default") from one ``--upstream`` flag."""
    name, sep, url = spec.partition("=")
    if not sep or "://" in name:
        return "default", spec
    if not name or "/" in name or ":" in name:
        raise ConfigError(
            f"--upstream {spec!r}: a provider name must be non-empty and contain no '/' or ':' "
            "(use --upstream NAME=URL, e.g. --upstream local=http://127.0.0.1:8000/v1)."
        )
    return name, url


def flag_upstreams(
    specs: Sequence[str],
    *,
    concurrency: int = 64,
    rpm: int = 0,
    tpm: int = 0,
    timeout: float = 600.0,
    api_key_env: str | None = "BATCHGATE_UPSTREAM_API_KEY",
) -> Config:
    """A config from repeated ``--upstream NAME=URL`` (or one plain URL, named "default"):
    ``NAME:model`` routes to NAME, any other model to the first one given. The limits and
    key variable apply to each."""
    pairs = [_flag(spec) for spec in specs]
    names = [name for name, _ in pairs]
    if not pairs:
        raise ConfigError("No upstream: pass --upstream URL or --upstream NAME=URL.")
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"--upstream names provider {name!r} more than once.")
    for name, url in pairs:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"--upstream {name}={url}: the URL must start with http:// or https://."
            )
    template = UpstreamConfig(
        name="",
        url="",
        api_key_env=api_key_env,
        concurrency=concurrency,
        rpm=rpm,
        tpm=tpm,
        timeout=timeout,
    )
    upstreams = tuple(dataclasses.replace(template, name=n, url=u) for n, u in pairs)
    return Config(upstreams=upstreams, default_upstream=names[0])


# --- routing -------------------------------------------------------------------------------------


class _Invalid(Exception):
    """A problem at one TOML key; load_config adds the file path."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def _split_prefix(model: str) -> tuple[str, str] | None:
    cut = [i for i in (model.find("/"), model.find(":")) if i >= 0]
    if not cut:
        return None
    i = min(cut)
    return model[:i], model[i + 1 :]


def _models_index(config: Config) -> dict[str, str]:
    index: dict[str, str] = {}
    for upstream in config.upstreams:
        for model in upstream.models:
            index.setdefault(model, upstream.name)  # first upstream in file order wins
    return index


def _route_plain(
    model: str, names: frozenset[str], by_model: Mapping[str, str], default: str | None
) -> Route | None:
    """Route without looking at aliases (routing steps 2 to 4)."""
    prefix = _split_prefix(model)
    if prefix is not None and prefix[0] in names and prefix[1]:
        return Route(prefix[0], prefix[1])
    if model in by_model:
        return Route(by_model[model], model)
    return Route(default, model) if default is not None else None


def _check_routes(config: Config) -> None:
    names = frozenset(u.name for u in config.upstreams)
    listed = ", ".join(u.name for u in config.upstreams) or "none"
    default = config.default_upstream
    if default is not None and default not in names:
        raise _Invalid("default", f"names no upstream: {default!r} (upstreams: {listed}).")
    by_model = _models_index(config)
    for alias, target in config.aliases.items():
        key = f"aliases.{_quote(alias)}"
        if target in config.aliases:
            raise _Invalid(
                key, f"targets {target!r}, which is itself an alias; aliases resolve once."
            )
        if _route_plain(target, names, by_model, default) is None:
            prefix = _split_prefix(target)
            why = (
                f"its prefix {prefix[0]!r} names no upstream" if prefix else "no upstream lists it"
            )
            raise _Invalid(
                key,
                f"targets {target!r}, but {why} and there is no default upstream "
                f"(upstreams: {listed}).",
            )


class Router:
    """Maps a request's ``model`` to an upstream and the model name to send it (cached)."""

    def __init__(self, config: Config) -> None:
        try:
            _check_routes(config)
        except _Invalid as exc:
            raise ConfigError(str(exc)) from None
        self.config = config
        self._names = frozenset(u.name for u in config.upstreams)
        self._default = config.default_upstream
        self._by_model = _models_index(config)
        self._aliases = dict(config.aliases)
        self._upstreams = {u.name: u for u in config.upstreams}
        self._cache: dict[str, Route | None] = {}

    def route(self, model: str | None) -> Route | None:
        if not model:
            return Route(self._default, "") if self._default is not None else None
        if model in self._cache:
            return self._cache[model]
        target = self._aliases.get(model, model)
        found = _route_plain(target, self._names, self._by_model, self._default)
        if found is not None:
            ticks = self._upstreams[found.upstream].ticks_per_token(found.model)
            found = Route(found.upstream, found.model, ticks)
        if len(self._cache) >= _ROUTE_CACHE_SIZE:
            del self._cache[next(iter(self._cache))]  # evict the oldest entry
        self._cache[model] = found
        return found


def _quote(key: str) -> str:
    bare = key.replace("-", "").replace("_", "").isalnum() and key.isascii()
    return key if bare else f'"{key}"'


# --- loading -------------------------------------------------------------------------------------


def _type_name(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array"}
    return names.get(type(value), "table" if isinstance(value, dict) else type(value).__name__)


def _check_keys(table: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in table:
        path = f"{where}.{_quote(key)}" if where else _quote(key)
        if key == "api_key":
            raise _Invalid(
                path,
                "API keys do not belong in the config file; put the key in an environment "
                'variable and name it with api_key_env = "MY_KEY_VAR".',
            )
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise _Invalid(path, f"unknown key.{hint} Known keys: {', '.join(known)}.")


def _table(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(key, f"must be a table, got {_type_name(value)}.")
    return value


def _integer(minimum: int) -> Callable[[object, str], int]:
    def check(value: object, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _Invalid(key, f"must be an integer >= {minimum}, got {value!r}.")
        return value

    return check


def _string(value: object, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise _Invalid(key, f"must be a non-empty string, got {_type_name(value)}.")
    return value


def _seconds(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise _Invalid(key, f"must be a positive number of seconds, got {value!r}.")
    return float(value)


def _kind(value: object, key: str) -> str:
    if value not in UPSTREAM_KINDS:
        raise _Invalid(key, f"must be one of {', '.join(UPSTREAM_KINDS)}, got {value!r}.")
    return str(value)


def _url(value: object, key: str) -> str:
    url = _string(value, key)
    if not url.startswith(("http://", "https://")):
        raise _Invalid(key, f"must be an http:// or https:// URL, got {url!r}.")
    return url


def _models(value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _Invalid(key, f"must be an array of model names, got {_type_name(value)}.")
    return tuple(_string(item, f"{key}[{i}]") for i, item in enumerate(value))


def _usd(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise _Invalid(key, f"must be a price >= 0 in USD per million tokens, got {value!r}.")
    return float(value)


def _price(value: object, key: str) -> Price:
    table = _table(value, key)
    _check_keys(table, ("input", "output"), key)
    missing = [side for side in ("input", "output") if side not in table]
    if missing:
        raise _Invalid(f"{key}.{missing[0]}", "is required, e.g. { input = 0.15, output = 0.60 }.")
    return Price(_usd(table["input"], f"{key}.input"), _usd(table["output"], f"{key}.output"))


def _prices(value: object, key: str) -> tuple[tuple[str, Price], ...]:
    table = _table(value, key)
    return tuple((model, _price(item, f"{key}.{_quote(model)}")) for model, item in table.items())


def _discount(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise _Invalid(key, f"must be a factor between 0 and 1 (0.5 = half price), got {value!r}.")
    return float(value)


_UPSTREAM_FIELDS: dict[str, Callable[[object, str], Any]] = {
    "url": _url,
    "kind": _kind,
    "api_key_env": _string,
    "concurrency": _integer(1),
    "rpm": _integer(0),
    "tpm": _integer(0),
    "timeout": _seconds,
    "models": _models,
    "prices": _prices,
    "batch_discount": _discount,
}
_LIMIT_FIELDS: dict[str, Callable[[object, str], Any]] = {
    "max_lines": _integer(1),
    "max_file_bytes": _integer(1),
    "max_errors": _integer(1),
}
_TOP_KEYS = ("default", "limits", "providers", "upstreams", "aliases")


def _fields(
    table: Mapping[str, Any], checks: Mapping[str, Callable[[object, str], Any]], where: str
) -> dict[str, Any]:
    _check_keys(table, tuple(checks), where)
    return {name: checks[name](value, f"{where}.{name}") for name, value in table.items()}


def _upstream(name: str, value: object, section: str = "upstreams") -> UpstreamConfig:
    where = f"{section}.{_quote(name)}"
    if not name or "/" in name or ":" in name:
        raise _Invalid(where, "a provider name must be non-empty and contain no '/' or ':'.")
    values = _fields(_table(value, where), _UPSTREAM_FIELDS, where)
    if "url" not in values:
        raise _Invalid(f"{where}.url", 'is required, e.g. url = "http://127.0.0.1:8000/v1".')
    return UpstreamConfig(name=name, **values)


def _upstreams(value: object, section: str) -> tuple[UpstreamConfig, ...]:
    table = _table(value, section)
    if not table:
        raise _Invalid(section, f"at least one [{section}.<name>] table with a url is needed.")
    return tuple(_upstream(name, item, section) for name, item in table.items())


def _section(data: Mapping[str, Any]) -> str:
    """Which table names the providers: ``providers``, or its older synonym ``upstreams``."""
    if "providers" in data and "upstreams" in data:
        raise _Invalid(
            "upstreams", "[upstreams] is a synonym of [providers]; use one of them, not both."
        )
    if "providers" in data:
        return "providers"
    if "upstreams" in data:
        return "upstreams"
    raise _Invalid(
        "providers",
        "at least one [providers.<name>] (or [upstreams.<name>]) table with a url is needed.",
    )


def _aliases(value: object) -> dict[str, str]:
    table = _table(value, "aliases")
    return {name: _string(target, f"aliases.{_quote(name)}") for name, target in table.items()}


def _build(data: Mapping[str, Any]) -> Config:
    _check_keys(data, _TOP_KEYS, "")
    section = _section(data)
    default = data.get("default")
    config = Config(
        upstreams=_upstreams(data[section], section),
        aliases=_aliases(data.get("aliases", {})),
        default_upstream=None if default is None else _string(default, "default"),
        limits=Limits(**_fields(_table(data.get("limits", {}), "limits"), _LIMIT_FIELDS, "limits")),
    )
    _check_routes(config)
    return config


def load_config(path: str | Path) -> Config:
    """Read and check a TOML config file; every problem is a ConfigError naming file and key."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the config file: {exc.strerror}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}.") from None
    try:
        return _build(data)
    except _Invalid as exc:
        raise ConfigError(f"{file}: {exc.key}: {exc.reason}") from None
