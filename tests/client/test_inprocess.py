"""A create → wait_for → results round trip with no socket, in each dialect: the blocking
Client over Starlette's TestClient, the AsyncClient over httpx.ASGITransport."""

from __future__ import annotations

import httpx
import pytest
from starlette.testclient import TestClient

from batchgate.api import Runtime, create_app
from batchgate.client import AsyncClient, Client
from tests.client.conftest import FAST, chat, messages


def test_sync_client_in_process(runtime: Runtime) -> None:
    with TestClient(create_app(runtime)) as http:
        client = Client(http_client=http)
        assert client.base_url == "http://testserver"
        batch = client.batches.wait_for(client.batches.create(chat(3)).id, **FAST)
        assert batch.status == "completed"
        assert [r.custom_id for r in client.batches.results(batch.id)] == ["r0", "r1", "r2"]

        mbatch = client.messages.batches.create(messages(2))
        mbatch = client.messages.batches.wait_for(mbatch.id, **FAST)
        results = client.messages.batches.results(mbatch.id)
        assert [(r.custom_id, r.ok) for r in results] == [("m0", True), ("m1", True)]
        client.close()
        assert not http.is_closed  # a client handed in is the caller's to close


@pytest.mark.anyio
async def test_async_client_in_process(runtime: Runtime) -> None:
    app = create_app(runtime)
    async with app.router.lifespan_context(app):  # ASGITransport runs no lifespan: the worker
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://inproc/v1/", transport=transport) as client:
            assert client.base_url == "http://inproc"
            batch = await client.batches.create(chat(3))
            batch = await client.batches.wait_for(batch.id, **FAST)
            assert batch.counts.succeeded == 3
            ids = [r.custom_id async for r in client.batches.results_stream(batch.id, page_size=2)]
            assert ids == ["r0", "r1", "r2"]

            mbatch = await client.messages.batches.create(iter(messages(2)))
            mbatch = await client.messages.batches.wait_for(mbatch.id, **FAST)
            results = await client.messages.batches.results(mbatch.id)
            assert [r.custom_id for r in results] == ["m0", "m1"] and all(r.ok for r in results)
            listed = [b.id async for b in client.messages.batches.list_all(limit=1)]
            assert listed == [mbatch.id]
