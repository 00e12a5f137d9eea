"""Model routing: which upstream a request's ``model`` goes to, and the name sent there.

A request's ``model`` is routed by, in order: an alias (exact name) → its target; a
``name/model`` or ``name:model`` prefix naming an upstream (split at the first ``/`` or ``:``)
→ that upstream with the prefix stripped; an upstream whose ``models`` lists the exact name
(first in file order); the default upstream with the model unchanged; otherwise unroutable.

``check_routes`` is the part of that a config file must pass (the default names an upstream,
every alias routes); the file loader and ``Router`` both run it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from batchgate.config import Config, InvalidKey, quote_key

__all__ = ["Route", "Router", "check_routes"]

_ROUTE_CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Route:
    upstream: str  # UpstreamConfig.name
    model: str  # the model name to send upstream (prefix stripped)
    # (input, output) ticks per token, discount applied; None when the model has no price.
    ticks: tuple[float, float] | None = None


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


def check_routes(config: Config) -> None:
    """Raise InvalidKey (a ConfigError naming the key) when the default names no upstream or
    an alias does not route."""
    names = frozenset(u.name for u in config.upstreams)
    listed = ", ".join(u.name for u in config.upstreams) or "none"
    default = config.default_upstream
    if default is not None and default not in names:
        raise InvalidKey("default", f"names no upstream: {default!r} (upstreams: {listed}).")
    by_model = _models_index(config)
    for alias, target in config.aliases.items():
        key = f"aliases.{quote_key(alias)}"
        if target in config.aliases:
            raise InvalidKey(
                key, f"targets {target!r}, which is itself an alias; aliases resolve once."
            )
        if _route_plain(target, names, by_model, default) is None:
            prefix = _split_prefix(target)
            why = (
                f"its prefix {prefix[0]!r} names no upstream" if prefix else "no upstream lists it"
            )
            raise InvalidKey(
                key,
                f"targets {target!r}, but {why} and there is no default upstream "
                f"(upstreams: {listed}).",
            )


class Router:
    """Maps a request's ``model`` to an upstream and the model name to send it (cached)."""

    def __init__(self, config: Config) -> None:
        check_routes(config)
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
