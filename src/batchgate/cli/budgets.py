"""``batchgate budgets set|list|rm``: tenant budgets in a server's store (the same
``--data-dir`` / ``--database-url`` as ``serve``). A running server applies a change from its
next lease on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from batchgate.cli.common import CreateStore, DatabaseUrl, DataDir, print_table
from batchgate.cli.runtime import operator_store, reported
from batchgate.domain.budget import PERIODS, parse_budget_usd, tenant_budget_object
from batchgate.domain.cost import usd
from batchgate.domain.keys import check_name
from batchgate.errors import InvalidRequest

budgets_app = typer.Typer(
    help="Tenant budgets in the server's store: set, list, remove.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add ``budgets set|list|rm`` to ``app``."""
    app.add_typer(budgets_app, name="budgets")


@budgets_app.command("set")
def set_budget(
    tenant: Annotated[str, typer.Argument(help="The tenant (as `batchgate keys list` shows).")],
    usd_amount: Annotated[
        str, typer.Argument(metavar="USD", help="The budget in USD, e.g. 25 or 2.50.")
    ],
    period: Annotated[
        str,
        typer.Option(
            help="What the budget covers: 'month' and 'day' (UTC) start over, 'total' never does."
        ),
    ] = "month",
    data_dir: DataDir = Path("./data"),
    database_url: DatabaseUrl = None,
    create_store: CreateStore = False,
) -> None:
    """Set (or replace) a tenant's budget: once its spend in the period reaches it, the
    tenant's requests not yet sent end with budget_exceeded."""
    with reported():
        check_name(tenant, "tenant")
        ticks = parse_budget_usd(usd_amount, "USD")
        if period not in PERIODS:
            raise InvalidRequest(
                f"--period: expected one of {', '.join(PERIODS)}, got {period!r}.",
                param="period",
            )
    assert ticks is not None
    with operator_store(data_dir, database_url, create=create_store) as store:
        store.set_budget(tenant, ticks, period, int(time.time()))
    typer.echo(f"Tenant {tenant!r} has a budget of {usd(ticks)} USD per {period}.")


@budgets_app.command("list")
def list_budgets(data_dir: DataDir = Path("./data"), database_url: DatabaseUrl = None) -> None:
    """List tenant budgets with what each tenant spent in the current period and what its
    requests in flight hold."""
    with operator_store(data_dir, database_url) as store:
        found = store.list_budgets(time.time())
    shown = [tenant_budget_object(b) for b in found]
    rows = [
        [b["tenant"], b["period"], b["budget"]["usd"], b["spent"]["usd"], b["reserved"]["usd"],
         "yes" if b["reached"] else "no"]
        for b in shown
    ]  # fmt: skip
    print_table(["tenant", "period", "budget_usd", "spent_usd", "reserved_usd", "reached"], rows)


@budgets_app.command("rm")
def remove(
    tenant: Annotated[str, typer.Argument(help="The tenant whose budget goes.")],
    data_dir: DataDir = Path("./data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Remove a tenant's budget (its spend so far stays recorded)."""
    with operator_store(data_dir, database_url) as store:
        store.delete_budget(tenant)
    typer.echo(f"Tenant {tenant!r} has no budget now.")
