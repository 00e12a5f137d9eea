"""Configuration as a value, read once at the edge (CLI or app factory).

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

    [providers.lab]
    url = "https://llm.lab.internal/v1"
    client = "fast"
    ca_file = "/etc/batchgate/lab-ca.pem"
    proxy = "http://proxy.corp:3128"
    connect_timeout = 5

    [aliases]
    "fast" = "local/llama-3.1-8b"

Upstream keys: ``url`` (required, base URL including /v1), ``kind`` ("openai" or "anthropic"),
``api_key_env``, ``concurrency`` (default 64), ``rpm`` and ``tpm`` (0 = unlimited), ``timeout``
(seconds to wait for the answer once the request is sent, default 600), ``models`` (exact names
this upstream serves), ``prices`` (per model, USD per million input and output tokens; ``"*"``
prices the provider's other models; a model without a price costs nothing and is reported as
unpriced), ``batch_discount`` (a factor in [0, 1] applied to every price of the provider,
default 1.0).

Network keys: ``client`` ("fast", batchgate's lean keep-alive client, or "aiohttp"; default
"fast" for http:// URLs, "aiohttp" for https://), ``connect_timeout`` (seconds to open a
connection, proxy tunnel and TLS handshake included, default 10; running out fails the attempt
as a connect error, the request unsent), ``ca_file`` (a PEM bundle of the CAs to trust instead
of the system's; checked when the file is loaded), ``verify`` (default true; false turns TLS
certificate and hostname checks off), ``proxy`` (``http://[user:password@]HOST:PORT``; the fast
client always tunnels with HTTP CONNECT, aiohttp for https:// only; when unset,
``with_environment`` takes HTTPS_PROXY / HTTP_PROXY for the URL's scheme unless NO_PROXY lists
the host). Every request carries ``User-Agent: batchgate/<version>``.

Secrets and the environment: the file names the variable holding a key (``api_key_env``),
never the key. Nothing below the CLI reads the environment: the CLI calls ``with_environment``
with ``os.environ`` once, which fills each upstream's ``api_key`` (a ``Secret``, never shown by
repr or str) and its proxy.

The file is read by ``configfile.load_config``; how a request's ``model`` picks an
upstream (aliases, ``name/model`` prefixes, ``models``, the default) is in ``routing.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# NO_PROXY matching as urllib does it; public since Python 3 but missing from typeshed.
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

from batchgate.domain.cost import TICKS_PER_USD
from batchgate.errors import ConfigError

__all__ = [
    "Config",
    "InvalidKey",
    "Limits",
    "Price",
    "Secret",
    "UpstreamConfig",
    "flag_upstreams",
    "quote_key",
    "redact",
    "single_upstream",
    "with_environment",
]

UPSTREAM_KINDS = ("openai", "anthropic")
HTTP_CLIENTS = ("fast", "aiohttp")
_TICKS_PER_TOKEN = TICKS_PER_USD / 1_000_000  # a price per million tokens -> ticks per token


CONNECT_TIMEOUT = 10.0  # the default time to open an upstream connection, in seconds


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens, as price lists state them."""

    input: float
    output: float


@dataclass(frozen=True, slots=True, repr=False)
class Secret:
    """A credential: ``reveal()`` gives its text; repr and str never do, so a config can be
    printed or logged whole."""

    _text: str

    def reveal(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return "Secret('***')"


def is_http_proxy(url: str) -> bool:
    """Whether ``url`` names a proxy batchgate can use: ``http://HOST[:PORT]`` (user:password@
    allowed). Checked where a proxy is configured and where one is opened."""
    parts = urlsplit(url)
    return parts.scheme == "http" and bool(parts.hostname)


def redact(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{hostport}").geturl()


@dataclass(frozen=True, slots=True, repr=False)
class UpstreamConfig:
    """One upstream server. The file names the env var holding its key (``api_key_env``);
    ``api_key`` is the key itself, filled in at the edge by ``with_environment``."""

    name: str
    url: str  # base URL including /v1, without a trailing slash
    kind: str = "openai"
    api_key_env: str | None = None
    concurrency: int = 64
    rpm: int = 0  # 0 = unlimited
    tpm: int = 0
    timeout: float = 600.0  # seconds to wait for an answer once the request is sent
    connect_timeout: float = CONNECT_TIMEOUT  # seconds to open a connection (proxy, TLS too)
    models: tuple[str, ...] = ()
    # (model or "*", price) pairs in file order, so the value stays hashable; a mapping given
    # here is stored as its pairs.
    prices: tuple[tuple[str, Price], ...] = ()
    batch_discount: float = 1.0
    client: str | None = None  # "fast" | "aiohttp"; None: chosen by the URL's scheme
    proxy: str | None = None  # http://[user:password@]HOST:PORT of a CONNECT proxy
    ca_file: str | None = None  # PEM bundle of the CAs to trust instead of the system's
    verify: bool = True  # False: TLS without certificate checks
    api_key: Secret | None = None

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

    @property
    def http_client(self) -> str:
        """The client that talks to it: ``client`` when set, else "fast" (the lean keep-alive
        client, for local servers) for http:// and "aiohttp" (the mainstream one) for https://."""
        if self.client is not None:
            return self.client
        return "aiohttp" if self.url.startswith("https://") else "fast"

    def __repr__(self) -> str:
        proxy = None if self.proxy is None else redact(self.proxy)
        return (
            f"UpstreamConfig(name={self.name!r}, url={self.url!r}, kind={self.kind!r}, "
            f"api_key_env={self.api_key_env!r}, concurrency={self.concurrency}, rpm={self.rpm}, "
            f"tpm={self.tpm}, timeout={self.timeout}, connect_timeout={self.connect_timeout}, "
            f"models={self.models!r}, prices={dict(self.prices)!r}, "
            f"batch_discount={self.batch_discount}, client={self.http_client!r}, "
            f"proxy={proxy!r}, ca_file={self.ca_file!r}, verify={self.verify}, "
            f"api_key={self.api_key!r})"
        )


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


class InvalidKey(ConfigError):
    """A problem at one config key; the file loader puts the file's path in front."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def quote_key(key: str) -> str:
    """``key`` as TOML writes it in a dotted path: bare when it can be, else quoted."""
    bare = key.replace("-", "").replace("_", "").isalnum() and key.isascii()
    return key if bare else f'"{key}"'


# --- what the environment supplies (the CLI calls this; nothing below it reads the environment)


def with_environment(
    config: Config, environ: Mapping[str, str], proxies: Mapping[str, str]
) -> Config:
    """``config`` with each upstream's key read from ``environ[api_key_env]`` and, where no
    ``proxy`` is configured, the proxy ``proxies`` name for its URL's scheme unless their
    ``no`` entry exempts its host. ``proxies`` is what ``urllib.request.getproxies_environment``
    returns (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, in either case)."""
    upstreams = tuple(_resolved(u, environ, proxies) for u in config.upstreams)
    return dataclasses.replace(config, upstreams=upstreams)


def _resolved(
    upstream: UpstreamConfig, environ: Mapping[str, str], proxies: Mapping[str, str]
) -> UpstreamConfig:
    key = environ.get(upstream.api_key_env) if upstream.api_key_env else None
    proxy = upstream.proxy if upstream.proxy is not None else _env_proxy(upstream, proxies)
    return dataclasses.replace(upstream, api_key=Secret(key) if key else None, proxy=proxy)


def _env_proxy(upstream: UpstreamConfig, proxies: Mapping[str, str]) -> str | None:
    parts = urlsplit(upstream.url)
    proxy = proxies.get(parts.scheme)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    if not proxy or proxy_bypass_environment(host, dict(proxies)):
        return None
    proxy = proxy if "://" in proxy else f"http://{proxy}"  # curl and urllib accept HOST:PORT
    if not is_http_proxy(proxy):
        raise ConfigError(
            f"Upstream {upstream.name!r}: the {parts.scheme}_proxy environment variable names "
            f"{redact(proxy)!r}; only http:// proxies are supported (set proxy in the config "
            "file, or NO_PROXY to go direct)."
        )
    return proxy
