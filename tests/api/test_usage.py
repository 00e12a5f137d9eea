"""``GET /v1/usage`` on a live server: a key sees its own tenant's usage, an admin key every
tenant's (or one), split by model on request, with located 400s for bad parameters."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from batchgate.domain.cost import usd
from batchgate.sim import SimHandle
from tests.api.test_auth import bearer, make_key
from tests.api.test_cost import priced_config
from tests.helpers.servers import ServerHandle

pytestmark = pytest.mark.timeout(60)

# No "model" in the body: the batch's model routes each request.
MSG = {"max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def _gateway_batch(srv: ServerHandle, http: httpx.Client, key: str, model: str, n: int) -> Any:
    body = {"model": model, "requests": [{"custom_id": f"r{i}", "body": MSG} for i in range(n)]}
    r = http.post("/v1/batches", headers=bearer(key), json=body)
    assert r.status_code == 200, r.text
    return srv.wait_for(r.json()["id"])


def _usage(http: httpx.Client, key: str, **params: str) -> Any:
    r = http.get("/v1/usage", headers=bearer(key), params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _entry(tenant: str, batch: Any, priced: bool) -> dict[str, Any]:
    ticks = int(batch["cost_ticks"])
    return {
        "tenant": tenant, "requests": batch["total"], "succeeded": batch["completed"],
        "failed": batch["failed"], "input_tokens": batch["input_tokens"],
        "output_tokens": batch["output_tokens"],
        "cost": {"ticks": ticks, "usd": usd(ticks), "priced": priced},
    }  # fmt: skip


def test_usage_per_tenant_as_each_key_sees_it(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(config=priced_config(sim))
    http = srv.http()
    a, b = make_key(srv.store, "alice", tenant="team-a"), make_key(srv.store, "bob")
    root = make_key(srv.store, "root", tenant="ops", admin=True)
    a_batch = _gateway_batch(srv, http, a, "sim:sim-model", 3)
    b_batch = _gateway_batch(srv, http, b, "free:sim-model", 2)  # no price: unknown cost
    assert a_batch["cost_ticks"] > 0 and b_batch["unpriced"] == 2
    mine, theirs = _entry("team-a", a_batch, True), _entry("bob", b_batch, False)

    got = _usage(http, a)
    assert got["object"] == "usage" and got["data"] == [mine]
    assert got["end"] - got["start"] == 86_400 and got["end"] >= time.time()
    assert _usage(http, b)["data"] == [theirs]
    assert _usage(http, a, tenant="team-a")["data"] == [mine]
    assert _usage(http, root)["data"] == [theirs, mine]  # every tenant, by name
    assert _usage(http, root, tenant="bob")["data"] == [theirs]
    by_model = _usage(http, root, group_by="model", tenant="team-a")["data"]
    assert by_model == [{**mine, "model": "sim-model"}]
    later = str(int(time.time()) + 10)
    assert _usage(http, root, start=later, end=later + "0")["data"] == []
    rfc = _usage(http, a, start="2020-01-01T00:00:00Z", end="2100-01-01")
    assert (rfc["start"], rfc["end"], rfc["data"]) == (1_577_836_800, 4_102_444_800, [mine])


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-13-01"}, "end"),
        ({"start": "200", "end": "100"}, "end"),
        ({"group_by": "upstream"}, "group_by"),
        ({"tenant": "someone-else"}, "tenant"),
    ],
)
def test_bad_parameters_are_located_400s(
    server: ServerHandle, params: dict[str, str], param: str
) -> None:
    key = make_key(server.store, "carol")
    r = server.http().get("/v1/usage", headers=bearer(key), params=params)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_value" and param in error["message"]
