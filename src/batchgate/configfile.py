"""Reading a TOML config file into a ``Config`` (the format is in ``config.py``'s docstring).

Every key is checked (a typo is an error, with the closest known key as a hint) and every
problem is a ConfigError that names the file and the key, e.g.
``batchgate.toml: providers.local.concurrency: must be an integer >= 1, got 0.``
"""

from __future__ import annotations

import difflib
import ssl
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from batchgate.config import (
    HTTP_CLIENTS,
    UPSTREAM_KINDS,
    Config,
    InvalidKey,
    Limits,
    Price,
    UpstreamConfig,
    is_http_proxy,
    quote_key,
    redact,
)
from batchgate.errors import ConfigError
from batchgate.routing import check_routes

__all__ = ["load_config"]


def _type_name(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array"}
    return names.get(type(value), "table" if isinstance(value, dict) else type(value).__name__)


def _check_keys(table: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in table:
        path = f"{where}.{quote_key(key)}" if where else quote_key(key)
        if key == "api_key":
            raise InvalidKey(
                path,
                "API keys do not belong in the config file; put the key in an environment "
                'variable and name it with api_key_env = "MY_KEY_VAR".',
            )
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InvalidKey(path, f"unknown key.{hint} Known keys: {', '.join(known)}.")


def _table(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidKey(key, f"must be a table, got {_type_name(value)}.")
    return value


def _integer(minimum: int) -> Callable[[object, str], int]:
    def check(value: object, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InvalidKey(key, f"must be an integer >= {minimum}, got {value!r}.")
        return value

    return check


def _string(value: object, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidKey(key, f"must be a non-empty string, got {_type_name(value)}.")
    return value


def _seconds(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidKey(key, f"must be a positive number of seconds, got {value!r}.")
    return float(value)


def _one_of(choices: tuple[str, ...]) -> Callable[[object, str], str]:
    def check(value: object, key: str) -> str:
        if value not in choices:
            raise InvalidKey(key, f"must be one of {', '.join(choices)}, got {value!r}.")
        return str(value)

    return check


def _url(value: object, key: str) -> str:
    url = _string(value, key)
    if not url.startswith(("http://", "https://")):
        raise InvalidKey(key, f"must be an http:// or https:// URL, got {url!r}.")
    return url


def _models(value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise InvalidKey(key, f"must be an array of model names, got {_type_name(value)}.")
    return tuple(_string(item, f"{key}[{i}]") for i, item in enumerate(value))


def _usd(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise InvalidKey(key, f"must be a price >= 0 in USD per million tokens, got {value!r}.")
    return float(value)


def _price(value: object, key: str) -> Price:
    table = _table(value, key)
    _check_keys(table, ("input", "output"), key)
    missing = [side for side in ("input", "output") if side not in table]
    if missing:
        raise InvalidKey(
            f"{key}.{missing[0]}", "is required, e.g. { input = 0.15, output = 0.60 }."
        )
    return Price(_usd(table["input"], f"{key}.input"), _usd(table["output"], f"{key}.output"))


def _prices(value: object, key: str) -> tuple[tuple[str, Price], ...]:
    table = _table(value, key)
    return tuple(
        (model, _price(item, f"{key}.{quote_key(model)}")) for model, item in table.items()
    )


def _discount(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidKey(
            key, f"must be a factor between 0 and 1 (0.5 = half price), got {value!r}."
        )
    return float(value)


def _proxy(value: object, key: str) -> str:
    url = _string(value, key)
    if not is_http_proxy(url):
        raise InvalidKey(
            key, f"must be an http:// proxy URL (http://HOST:PORT), got {redact(url)!r}."
        )
    return url


def _boolean(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidKey(key, f"must be true or false, got {_type_name(value)}.")
    return value


def _ca_file(value: object, key: str) -> str:
    """A readable PEM bundle: checked here, so a bad path fails at start, not per request."""
    path = _string(value, key)
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError:  # an OSError too: first
        raise InvalidKey(key, f"{path!r} holds no PEM CA certificate.") from None
    except OSError as exc:
        raise InvalidKey(key, f"cannot read {path!r}: {exc.strerror}.") from None
    return path


_UPSTREAM_FIELDS: dict[str, Callable[[object, str], Any]] = {
    "url": _url,
    "kind": _one_of(UPSTREAM_KINDS),
    "api_key_env": _string,
    "concurrency": _integer(1),
    "rpm": _integer(0),
    "tpm": _integer(0),
    "timeout": _seconds,
    "models": _models,
    "prices": _prices,
    "batch_discount": _discount,
    "client": _one_of(HTTP_CLIENTS),
    "proxy": _proxy,
    "ca_file": _ca_file,
    "verify": _boolean,
    "connect_timeout": _seconds,
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
    where = f"{section}.{quote_key(name)}"
    if not name or "/" in name or ":" in name:
        raise InvalidKey(where, "a provider name must be non-empty and contain no '/' or ':'.")
    values = _fields(_table(value, where), _UPSTREAM_FIELDS, where)
    if "url" not in values:
        raise InvalidKey(f"{where}.url", 'is required, e.g. url = "http://127.0.0.1:8000/v1".')
    return UpstreamConfig(name=name, **values)


def _upstreams(value: object, section: str) -> tuple[UpstreamConfig, ...]:
    table = _table(value, section)
    if not table:
        raise InvalidKey(section, f"at least one [{section}.<name>] table with a url is needed.")
    return tuple(_upstream(name, item, section) for name, item in table.items())


def _section(data: Mapping[str, Any]) -> str:
    """Which table names the providers: ``providers``, or its older synonym ``upstreams``."""
    if "providers" in data and "upstreams" in data:
        raise InvalidKey(
            "upstreams", "[upstreams] is a synonym of [providers]; use one of them, not both."
        )
    if "providers" in data:
        return "providers"
    if "upstreams" in data:
        return "upstreams"
    raise InvalidKey(
        "providers",
        "at least one [providers.<name>] (or [upstreams.<name>]) table with a url is needed.",
    )


def _aliases(value: object) -> dict[str, str]:
    table = _table(value, "aliases")
    return {name: _string(target, f"aliases.{quote_key(name)}") for name, target in table.items()}


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
    check_routes(config)
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
    except InvalidKey as exc:
        raise ConfigError(f"{file}: {exc.key}: {exc.reason}") from None
