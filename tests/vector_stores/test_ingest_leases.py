"""Ingestion leases: a file being indexed for longer than its lease keeps it (renewed), so no
other worker indexes it meanwhile; a worker that dies leaves its file to be claimed again,
and indexed anew, once the lease runs out."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from assistants_server.vector_stores.ingest import Ingestor
from tests.vector_stores.test_ingest import HeldIndex, attached_file, lease_of

LEASE = 0.6


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"executor_enabled": False}  # the app's own worker stays out of the way


def _worker(app: Any, index: Any = None) -> Ingestor:
    return Ingestor(app.state.sessionmaker, app.state.blobs, index or app.state.search_index,
                    lease_seconds=LEASE)


async def _die(worker: Ingestor) -> None:
    """What a killed process leaves: its leases neither renewed nor released."""
    await worker.leases.stop()
    for task in worker.tasks:
        task.cancel()
    await asyncio.gather(*worker.tasks, return_exceptions=True)


async def test_a_long_ingestion_keeps_its_lease(client: httpx.AsyncClient, app: Any) -> None:
    store_id = await attached_file(client)
    index = HeldIndex(app.state.search_index)
    slow, other = _worker(app, index), _worker(app)
    assert await slow.claim() == 1
    await asyncio.wait_for(index.entered.wait(), 10)
    deadline = time.monotonic() + 4 * LEASE
    while time.monotonic() < deadline:  # indexing lasts several leases
        assert await other.claim() == 0, "a second worker claimed a file being indexed"
        status, expires = await lease_of(app, store_id)
        assert status == "in_progress" and expires is not None and expires > time.time()
        await asyncio.sleep(0.1)
    index.release.set()
    await asyncio.gather(*slow.tasks)
    assert await lease_of(app, store_id) == ("completed", None)
    assert not other.tasks
    await slow.stop()
    await other.stop()


async def test_the_file_of_a_dead_worker_is_claimed_again_once_its_lease_runs_out(
    client: httpx.AsyncClient, app: Any
) -> None:
    store_id = await attached_file(client)
    index = HeldIndex(app.state.search_index)
    dead = _worker(app, index)
    assert await dead.claim() == 1
    await asyncio.wait_for(index.entered.wait(), 10)
    await _die(dead)
    survivor = _worker(app)
    assert await survivor.claim() == 0  # the lease has not run out yet
    await asyncio.sleep(LEASE + 0.1)
    assert await survivor.claim() == 1
    await asyncio.gather(*survivor.tasks)
    assert await lease_of(app, store_id) == ("completed", None)
    files = (await client.get(f"/v1/vector_stores/{store_id}/files")).json()["data"]
    assert [f["status"] for f in files] == ["completed"]
    search = await client.post(f"/v1/vector_stores/{store_id}/search",
                               json={"query": "refunds"})
    assert search.json()["data"], "the file indexed again is searchable"
    await survivor.stop()

