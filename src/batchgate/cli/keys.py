"""``batchgate keys create|list|revoke``: the API keys in a server's store (the same
``--data-dir`` / ``--database-url`` as ``serve``), and the open-mode rule ``serve`` checks at
start: with no live key it runs open, and only on a loopback address."""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from batchgate.cli.common import CreateStore, DatabaseUrl, DataDir, print_table
from batchgate.cli.runtime import operator_store, reported
from batchgate.domain.keys import check_name, issue
from batchgate.errors import ConfigError
from batchgate.storage.sql import SqlStore

log = logging.getLogger("batchgate.cli")

keys_app = typer.Typer(
    help="API keys in the server's store: create, list, revoke.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add ``keys create|list|revoke`` to ``app``."""
    app.add_typer(keys_app, name="keys")


@keys_app.command()
def create(
    name: Annotated[str, typer.Argument(help="The key's name, unique among live keys.")],
    tenant: Annotated[
        str | None,
        typer.Option(help="The tenant owning what the key creates (default: the name)."),
    ] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="The key sees and acts on every tenant's objects.")
    ] = False,
    data_dir: DataDir = Path("./data"),
    database_url: DatabaseUrl = None,
    create_store: CreateStore = False,
) -> None:
    """Create an API key; prints it once, alone on the last line."""
    owner = tenant if tenant is not None else name
    with reported():
        check_name(name, "name")
        check_name(owner, "tenant")
    with operator_store(data_dir, database_url, create=create_store) as store:
        key = issue()
        row = store.create_key(
            name=name, tenant=owner, admin=admin, key_hash=key.key_hash, prefix=key.prefix,
            now=int(time.time()),
        )  # fmt: skip
    kind = "admin key (every tenant)" if admin else "key"
    typer.echo(f"Created {kind} {row.id} named {name!r} for tenant {owner!r}.")
    typer.echo("Keep it now, it is not shown again; send it as 'Authorization: Bearer <key>'")
    typer.echo("or 'x-api-key: <key>' (BATCHGATE_API_KEY for the batchgate CLI and SDK):")
    typer.echo(key.secret)


@keys_app.command("list")
def list_keys(data_dir: DataDir = Path("./data"), database_url: DatabaseUrl = None) -> None:
    """List API keys, revoked ones too (never a secret: only its first characters)."""
    with operator_store(data_dir, database_url) as store:
        found = store.list_keys()
    rows = [
        [k.id, k.name, k.tenant, k.prefix + "…", "yes" if k.admin else "no",
         _when(k.created_at), _when(k.revoked_at)]
        for k in found
    ]  # fmt: skip
    print_table(["id", "name", "tenant", "prefix", "admin", "created", "revoked"], rows)


@keys_app.command()
def revoke(
    id_or_name: Annotated[str, typer.Argument(help="The key's id (key_…) or its name.")],
    data_dir: DataDir = Path("./data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API key: refused from the next request on, by running servers too."""
    with operator_store(data_dir, database_url) as store:
        row = store.revoke_key(id_or_name, int(time.time()))
    typer.echo(
        f"Revoked key {row.id} named {row.name!r} (tenant {row.tenant!r}) "
        f"at {_when(row.revoked_at)}."
    )


def _when(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else "-"


# -- open mode: what ``serve`` checks at start ---------------------------------------------------


def open_mode_allowed(store: SqlStore, host: str, *, force_open: bool = False) -> bool:
    """Whether ``serve --host HOST`` may run open while the store has no live key: only on a
    loopback address, and once keys have been made only with ``--open`` (``force_open``):
    revoking every key closes the server, it does not open it. Says at start which it is;
    refuses (ConfigError) a store that never had a key on any other address, and ``--open``
    there."""
    loopback = is_loopback(host)
    live, ever = store.key_state()
    refuse_public_open(host, force_open)
    if live:
        return loopback
    if ever and not force_open:
        log.warning(
            "CLOSED: every API key of this store has been revoked, so this server refuses "
            "every request until a key is created with `batchgate keys create NAME` (same "
            "--data-dir / --database-url); it does not fall back to open mode (`serve --open` "
            "would, on loopback)."
        )
        return loopback
    if not loopback:
        raise ConfigError(
            f"This store has no API keys, and --host {host} is not a loopback address: "
            "batchgate runs without keys only on 127.0.0.1, ::1 or localhost. Create a key "
            "first with `batchgate keys create NAME` (same --data-dir / --database-url), "
            "or listen on 127.0.0.1."
        )
    log.warning(
        "OPEN MODE: this store has no %sAPI keys, so anyone on this machine can use this server "
        "(every caller is one tenant, and keys are not checked). Create one with `batchgate "
        "keys create NAME` (same --data-dir / --database-url) to require keys.",
        "live " if ever else "",
    )
    return True


def refuse_public_open(host: str, force_open: bool) -> None:
    """``serve --open`` on an address other than loopback: a ConfigError, before anything."""
    if force_open and not is_loopback(host):
        raise ConfigError(
            f"--open runs without keys, and --host {host} is not a loopback address: batchgate "
            "runs open only on 127.0.0.1, ::1 or localhost."
        )


def is_loopback(host: str) -> bool:
    """An IP literal on loopback, or a name every address of which is (``localhost``)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)
