"""API keys and tenants on a live server: every endpoint of every dialect hides another
tenant's objects (a 404 exactly like an unknown id's), an admin key sees everything, a missing,
unknown or revoked key gets 401 in the dialect's envelope, and open mode."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from typer.testing import CliRunner

from batchgate.api.anthropic.routes import routes as anthropic_routes
from batchgate.api.auth import OPEN, KeyRing
from batchgate.api.jobs.routes import routes as jobs_routes
from batchgate.api.openai.routes import routes as openai_routes
from batchgate.api.usage import routes as usage_routes
from batchgate.cli.main import app as cli_app
from batchgate.config import Config
from batchgate.domain.keys import issue
from batchgate.errors import AuthenticationFailed
from batchgate.service import Service
from batchgate.sim import SimHandle
from batchgate.storage.blobs import BlobStore
from batchgate.storage.sql import SqlStore, open_store
from tests.helpers.procs import chat_lines
from tests.helpers.servers import ServerHandle, run_server

pytestmark = pytest.mark.timeout(60)

CHAT = "/v1/chat/completions"
MSG = {"model": "sim-model", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}

# Every route of every dialect, by (method, path with {kind} placeholders); gateway batches
# share the OpenAI dialect's /v1/batches routes and are walked there as kind "gwbatch".
# A new route must be added here: ``test_the_walk_covers_every_route`` fails until it is.
OBJECT_ROUTES = [
    ("GET", "/v1/files/{file}"),
    ("GET", "/v1/files/{file}/content"),
    ("DELETE", "/v1/files/{file}"),
    ("GET", "/v1/batches/{batch}"),
    ("POST", "/v1/batches/{batch}/cancel"),
    ("POST", "/v1/batches/{batch}/retry"),
    ("GET", "/v1/batches/{batch}/results?after=0"),
    ("DELETE", "/v1/batches/{batch}"),
    ("GET", "/v1/messages/batches/{msgbatch}"),
    ("POST", "/v1/messages/batches/{msgbatch}/cancel"),
    ("POST", "/v1/messages/batches/{msgbatch}/retry"),
    ("GET", "/v1/messages/batches/{msgbatch}/results"),
    ("GET", "/v1/messages/batches/{msgbatch}/results?after=0"),
    ("DELETE", "/v1/messages/batches/{msgbatch}"),
    ("GET", "/v1/batches/{gwbatch}"),
    ("POST", "/v1/batches/{gwbatch}/cancel"),
    ("POST", "/v1/batches/{gwbatch}/retry"),
    ("GET", "/v1/batches/{gwbatch}/results"),
    ("GET", "/v1/batches/{gwbatch}/results?after=0"),
    ("DELETE", "/v1/batches/{gwbatch}"),
    ("GET", "/qai/v1/batch/jobs/{job}"),
]
LIST_ROUTES = [
    ("GET", "/v1/files"), ("GET", "/v1/batches"), ("GET", "/v1/messages/batches"),
    ("GET", "/qai/v1/batch/jobs"),
]  # fmt: skip
# Usage and budgets name tenants, not objects: walked by
# ``test_usage_and_budgets_show_only_the_callers_tenant``.
USAGE_ROUTES = [("GET", "/v1/usage"), ("GET", "/v1/budgets")]
CREATE_ROUTES = [
    ("POST", "/v1/files"), ("POST", "/v1/batches"), ("POST", "/v1/messages/batches"),
    ("POST", "/qai/v1/batch"), ("POST", "/qai/v1/batch/jsonl"),
    ("POST", "/qai/v1/batch/retry"),  # names jobs in its body: walked on its own below
]  # fmt: skip
UNKNOWN = {
    "file": "file-01aaaaaaaaaaaaaaaaaaaaaaaa",
    "batch": "batch_01aaaaaaaaaaaaaaaaaaaaaaaa",
    "msgbatch": "msgbatch_01aaaaaaaaaaaaaaaaaaaaaaaa",
    "gwbatch": "batch_01aaaaaaaaaaaaaaaaaaaaaaaa",
    "job": "job_01aaaaaaaaaaaaaaaaaaaaaaaa_1",
}


def make_key(store: SqlStore, name: str, *, tenant: str | None = None, admin: bool = False) -> str:
    key = issue()
    store.create_key(
        name=name, tenant=tenant or name, admin=admin, key_hash=key.key_hash,
        prefix=key.prefix, now=int(time.time()),
    )  # fmt: skip
    return key.secret


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@dataclass
class World:
    """One server with tenant A's finished objects, and keys for A, B and an admin."""

    srv: ServerHandle
    http: httpx.Client
    a: str
    b: str
    admin: str
    objects: dict[str, list[str]]  # kind -> A's ids of that kind

    def call(self, method: str, path: str, key: str | None, **kw: Any) -> httpx.Response:
        headers = {**bearer(key)} if key else {}
        return self.http.request(method, path, headers={**headers, **kw.pop("headers", {})}, **kw)


def _upload(w: World | httpx.Client, key: str, data: bytes) -> str:
    http = w.http if isinstance(w, World) else w
    r = http.post(
        "/v1/files", headers=bearer(key), data={"purpose": "batch"},
        files={"file": ("in.jsonl", data)},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def _openai_batch(http: httpx.Client, key: str, file_id: str) -> httpx.Response:
    body = {"input_file_id": file_id, "endpoint": CHAT, "completion_window": "24h"}
    return http.post("/v1/batches", headers=bearer(key), json=body)


def _gateway_batch(http: httpx.Client, key: str) -> str:
    body = {"model": "default:sim-model", "requests": [{"custom_id": "g1", "body": MSG}]}
    r = http.post("/v1/batches", headers=bearer(key), json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def _job(http: httpx.Client, key: str) -> str:
    r = http.post("/qai/v1/batch", headers=bearer(key),
                  json={"jobs": [{"model": "sim-model", "prompt": "hi"}]})  # fmt: skip
    assert r.status_code == 200, r.text
    return str(r.json()["job_ids"][0])


def _message_batch(http: httpx.Client, key: str) -> str:
    body = {"requests": [{"custom_id": "m1", "params": MSG}]}
    r = http.post("/v1/messages/batches", headers={"x-api-key": key}, json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


@pytest.fixture(scope="module")
def world(sim_session: SimHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    d = tmp_path_factory.mktemp("auth")
    with run_server(f"sqlite:///{d / 'db.sqlite'}", d / "data", upstream_url=sim_session.url) as s:
        http = s.http()
        a, b = make_key(s.store, "alice", tenant="team-a"), make_key(s.store, "bob")
        root = make_key(s.store, "root", tenant="ops", admin=True)
        fid = _upload(http, a, chat_lines(2))
        bid = _openai_batch(http, a, fid).json()["id"]
        mid = _message_batch(http, a)
        gid, job = _gateway_batch(http, a), _job(http, a)
        output = s.wait_for(bid)["output_file_id"]
        s.wait_for(mid)
        s.wait_for(gid)
        objects = {
            "file": [fid, output], "batch": [bid], "msgbatch": [mid], "gwbatch": [gid],
            "job": [job],
        }  # fmt: skip
        yield World(s, http, a, b, root, objects)


def _filled(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


def _kind(path: str) -> str:
    found = re.search(r"\{(\w+)\}", path)
    assert found is not None
    return found.group(1)


def _shape(r: httpx.Response, object_id: str) -> tuple[int, str]:
    """The answer with the id and the request id taken out: what may not differ between
    another tenant's object and one that does not exist."""
    body = r.json()
    body.pop("request_id", None)
    return r.status_code, json.dumps(body, sort_keys=True).replace(object_id, "<id>")


def _route_key(method: str, path: str) -> tuple[str, str]:
    return method, re.sub(r"\{\w+\}", "{}", path.split("?")[0])


def test_the_walk_covers_every_route() -> None:
    served = {
        _route_key(method, route.path)
        for route in openai_routes() + anthropic_routes() + jobs_routes() + usage_routes()
        for method in route.methods or ()
        if method != "HEAD"
    }
    walked = {
        _route_key(m, p) for m, p in OBJECT_ROUTES + LIST_ROUTES + USAGE_ROUTES + CREATE_ROUTES
    }
    assert served - walked == set(), "add these routes to the tenant walk"


@pytest.mark.parametrize(("method", "path"), OBJECT_ROUTES)
def test_another_tenant_gets_the_unknown_id_answer(world: World, method: str, path: str) -> None:
    kind = _kind(path)
    unknown = world.call(method, _filled(path, UNKNOWN), world.b)
    assert unknown.status_code == 404, unknown.text
    for object_id in world.objects[kind]:
        theirs = world.call(method, _filled(path, {kind: object_id}), world.b)
        assert _shape(theirs, object_id) == _shape(unknown, UNKNOWN[kind])
        if method == "GET":  # the owner and the admin do see it
            for key in (world.a, world.admin):
                r = world.call(method, _filled(path, {kind: object_id}), key)
                assert r.status_code == 200, r.text
    if path.startswith("/v1/messages"):
        assert unknown.json()["error"]["type"] == "not_found_error"
    elif path.startswith("/qai/"):
        assert UNKNOWN[kind] in unknown.json()["error"]  # the jobs envelope: a string
    else:
        assert unknown.json()["error"]["code"] == "not_found"


def test_another_tenants_job_cannot_be_retried(world: World) -> None:
    """The jobs retry names its jobs in the body: another tenant's job is an unknown job."""
    job, unknown = world.objects["job"][0], UNKNOWN["job"]
    theirs = world.call("POST", "/qai/v1/batch/retry", world.b, json={"job_ids": [job]})
    nothing = world.call("POST", "/qai/v1/batch/retry", world.b, json={"job_ids": [unknown]})
    assert theirs.status_code == 404
    assert _shape(theirs, job) == _shape(nothing, unknown)
    world.srv.wait_for(job.replace("job_", "jobs_").rsplit("_", 1)[0])
    own = world.call("POST", "/qai/v1/batch/retry", world.a, json={"job_ids": [job]})
    assert own.status_code == 400 and "completed" in own.json()["error"]  # seen, not retried


def test_lists_show_only_the_callers_own_objects(world: World) -> None:
    mine = _upload(world, world.b, chat_lines(1, prefix="b"))
    theirs = {i for ids in world.objects.values() for i in ids}
    for method, path in LIST_ROUTES:
        seen = {}
        for who, key in (("a", world.a), ("b", world.b), ("admin", world.admin)):
            r = world.call(method, path, key)
            assert r.status_code == 200, r.text
            seen[who] = _listed_ids(r.json())
        assert not seen["b"] & theirs, path
        assert seen["a"] & theirs and mine not in seen["a"], path
        assert seen["a"] <= seen["admin"] and seen["b"] <= seen["admin"], path
    assert mine in seen_files(world, world.b) and mine in seen_files(world, world.admin)


def _listed_ids(page: dict[str, Any]) -> set[str]:
    if "jobs" in page:  # the jobs dialect's list
        return {x["job_id"] for x in page["jobs"]}
    return {x["id"] for x in page["data"]}


@pytest.mark.parametrize(("method", "path"), USAGE_ROUTES)
def test_usage_and_budgets_show_only_the_callers_tenant(
    world: World, method: str, path: str
) -> None:
    seen: dict[str, set[str]] = {}
    tenants = ("team-a", "bob")
    for tenant in tenants:  # only while this test runs: the world's models have no price
        world.srv.store.set_budget(tenant, 10**12, "month", 0)
    try:
        for who, key in (("a", world.a), ("b", world.b), ("admin", world.admin)):
            r = world.call(method, path, key)
            assert r.status_code == 200, r.text
            seen[who] = {g["tenant"] for g in r.json()["data"]}
    finally:
        for tenant in tenants:
            world.srv.store.delete_budget(tenant)
    assert seen["a"] == {"team-a"} and seen["b"] <= {"bob"}
    assert seen["a"] | seen["b"] <= seen["admin"]
    r = world.call(method, path + "?tenant=team-a", world.b)  # a filter is no way round it
    assert r.status_code == 400 and r.json()["error"]["param"] == "tenant"


def seen_files(world: World, key: str) -> set[str]:
    return {x["id"] for x in world.call("GET", "/v1/files", key).json()["data"]}


def test_another_tenants_file_cannot_be_a_batch_input(world: World) -> None:
    before = world.call("GET", "/v1/batches", world.b).json()["data"]
    for fid in world.objects["file"]:
        theirs = _openai_batch(world.http, world.b, fid)
        unknown = _openai_batch(world.http, world.b, UNKNOWN["file"])
        assert theirs.status_code == 400 and theirs.json()["error"]["param"] == "input_file_id"
        assert _shape(theirs, fid) == _shape(unknown, UNKNOWN["file"])
    assert world.call("GET", "/v1/batches", world.b).json()["data"] == before


def test_admin_sees_and_cancels_another_tenants_batches(
    make_server: Callable[..., ServerHandle],
) -> None:
    srv = make_server(worker=False)  # nothing runs: the batches stay open to be cancelled
    http = srv.http()
    a, b = make_key(srv.store, "alice"), make_key(srv.store, "bob")
    root = make_key(srv.store, "root", admin=True)
    bid = _openai_batch(http, a, _upload(http, a, chat_lines(1))).json()["id"]
    mid = _message_batch(http, a)
    for path in (f"/v1/batches/{bid}/cancel", f"/v1/messages/batches/{mid}/cancel"):
        assert http.post(path, headers=bearer(b)).status_code == 404
        r = http.post(path, headers=bearer(root))
        assert r.status_code == 200, r.text
    assert http.get(f"/v1/batches/{bid}", headers=bearer(a)).json()["status"] == "cancelling"
    got = http.get(f"/v1/messages/batches/{mid}", headers=bearer(a)).json()
    assert got["processing_status"] == "canceling"
    assert bid in {x["id"] for x in http.get("/v1/batches", headers=bearer(root)).json()["data"]}
    own = _upload(http, root, chat_lines(1))  # what an admin creates is its own tenant's
    assert srv.store.get_file(own, "root") is not None
    assert http.get(f"/v1/files/{own}", headers=bearer(a)).status_code == 404


def _assert_401(r: httpx.Response, code: str) -> None:
    assert r.status_code == 401, r.text
    body = r.json()
    if r.request.url.path.startswith("/v1/messages"):
        assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
        assert body["request_id"] == r.headers["request-id"]
    elif r.request.url.path.startswith("/qai/"):
        assert isinstance(body["error"], str) and "API key" in body["error"]
    else:
        assert body["error"]["type"] == "authentication_error"
        assert body["error"]["code"] == code and r.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "path"), OBJECT_ROUTES + LIST_ROUTES + USAGE_ROUTES + CREATE_ROUTES
)
def test_every_route_refuses_a_missing_or_unknown_key(world: World, method: str, path: str) -> None:
    target = _filled(path, UNKNOWN)
    _assert_401(world.call(method, target, None), "missing_api_key")
    _assert_401(world.call(method, target, "bg_not-a-key"), "invalid_api_key")
    _assert_401(world.call(method, target, None, headers={"x-api-key": "nope"}), "invalid_api_key")
    assert world.http.get("/health").status_code == 200  # the one open path


def test_both_header_styles_identify_the_key(world: World) -> None:
    for headers in (
        bearer(world.a),
        {"x-api-key": world.a},
        {"authorization": f"bearer {world.a}"},
    ):
        r = world.http.get("/v1/batches", headers=headers)
        assert r.status_code == 200, r.text
        assert world.objects["batch"][0] in {x["id"] for x in r.json()["data"]}


def test_a_revoked_key_is_refused_at_once_in_both_envelopes(world: World) -> None:
    key = make_key(world.srv.store, "carol")
    oai = openai.OpenAI(base_url=world.srv.url + "/v1", api_key=key, max_retries=0)
    ant = anthropic.Anthropic(base_url=world.srv.url, api_key=key, max_retries=0)
    assert oai.files.list().data == [] and ant.messages.batches.list().data == []
    world.srv.store.revoke_key("carol", int(time.time()))
    with pytest.raises(openai.AuthenticationError):
        oai.files.list()
    with pytest.raises(anthropic.AuthenticationError):
        ant.messages.batches.list()
    for path in ("/v1/files", "/v1/messages/batches"):
        _assert_401(world.call("GET", path, key), "invalid_api_key")
        _assert_401(world.call("GET", path, None, headers={"x-api-key": key}), "invalid_api_key")
    oai.close()
    ant.close()


def test_open_mode_ignores_keys_until_one_is_created(server: ServerHandle, tmp_path: Path) -> None:
    http = server.http()
    open_file = _upload(http, "test-key", chat_lines(1))  # no keys yet: any key, tenant ""
    assert http.get(f"/v1/files/{open_file}").status_code == 200  # and no key at all
    created = CliRunner().invoke(
        cli_app, ["keys", "create", "dana", "--database-url", server.store.url,
                  "--data-dir", str(tmp_path / "cli")],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    key = created.stdout.splitlines()[-1]
    deadline = time.monotonic() + 5
    while http.get("/v1/files").status_code != 401:  # the server notices within a second
        assert time.monotonic() < deadline, "the server still runs open"
        time.sleep(0.05)
    _assert_401(http.get("/v1/files", headers=bearer("test-key")), "invalid_api_key")
    r = http.get("/v1/files", headers=bearer(key))
    assert r.status_code == 200 and r.json()["data"] == []  # tenant "dana" sees not tenant ""
    assert http.get(f"/v1/files/{open_file}", headers=bearer(key)).status_code == 404


def test_revoking_the_last_key_of_a_running_server_closes_it(server: ServerHandle) -> None:
    """A running server that had keys does not fall back to open mode when the last one is
    revoked: it refuses everyone until a key is created again."""
    http = server.http()
    key = make_key(server.store, "erin")
    assert http.get("/v1/files", headers=bearer(key)).status_code == 200
    server.store.revoke_key("erin", now=int(time.time()))
    deadline = time.monotonic() + 5
    while (r := http.get("/v1/files")).json()["error"]["code"] != "all_keys_revoked":
        assert time.monotonic() < deadline, r.text
        time.sleep(0.05)
    assert r.status_code == 401 and "does not fall back to open mode" in r.text
    assert http.get("/v1/files", headers=bearer(key)).status_code == 401
    r = http.post("/v1/messages/batches", json={"requests": []})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


def test_without_keys_a_server_that_may_not_run_open_refuses_everyone(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")

    async def callers() -> list[object]:
        service = Service(store, BlobStore(tmp_path / "blobs"), Config())
        closed, opened = KeyRing(service, allow_open=False), KeyRing(service, allow_open=True)
        out: list[object] = [await opened.caller(None), await opened.caller("bg_x")]
        for secret in (None, "bg_x"):
            with pytest.raises(AuthenticationFailed) as ei:
                await closed.caller(secret)
            out.append(ei.value.code)
        return out

    try:
        assert asyncio.run(callers()) == [OPEN, OPEN, "no_api_keys", "no_api_keys"]
    finally:
        store.close()
