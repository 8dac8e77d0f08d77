"""The ingestion worker on its own: a stopped worker releases the files it was indexing, and
an outcome is written only under the claim that produced it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from assistants_server.db.models import VectorStoreFileRow
from assistants_server.retrieval.index import PreparedChunks
from assistants_server.vector_stores.ingest import Ingestor


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"executor_enabled": False}  # the app's own worker stays out of the way


class HeldIndex:
    """The app's index, but `prepare` waits until released (a slow embeddings endpoint)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.entered, self.release = inner, asyncio.Event(), asyncio.Event()

    async def prepare(self, chunks: Sequence[tuple[str, int]]) -> PreparedChunks:
        self.entered.set()
        await self.release.wait()
        prepared: PreparedChunks = await self.inner.prepare(chunks)
        return prepared

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def attached_file(client: httpx.AsyncClient) -> str:
    file = (await client.post("/v1/files", data={"purpose": "assistants"},
                              files={"file": ("a.txt", b"Refunds within 30 days.")})).json()
    store = (await client.post("/v1/vector_stores", json={"file_ids": [file["id"]]})).json()
    return str(store["id"])


async def lease_of(app: Any, store_id: str) -> tuple[str, float | None]:
    async with app.state.sessionmaker() as session:
        row = (await session.execute(select(
            VectorStoreFileRow.status, VectorStoreFileRow.lease_expires_at).where(
            VectorStoreFileRow.vector_store_id == store_id))).one()
        return str(row[0]), row[1]


async def indexing(client: httpx.AsyncClient, app: Any) -> tuple[str, HeldIndex, Ingestor]:
    """A file attached to a new store, claimed by a worker whose index holds it mid-way."""
    store_id = await attached_file(client)
    index = HeldIndex(app.state.search_index)
    worker = Ingestor(app.state.sessionmaker, app.state.blobs, index)
    assert await worker.claim() == 1
    await asyncio.wait_for(index.entered.wait(), 10)
    return store_id, index, worker


async def test_a_stopped_worker_releases_the_files_it_was_indexing(
    client: httpx.AsyncClient, app: Any
) -> None:
    store_id, _, worker = await indexing(client, app)
    assert (await lease_of(app, store_id))[1] is not None
    await worker.stop()
    assert await lease_of(app, store_id) == ("in_progress", None)
    again = Ingestor(app.state.sessionmaker, app.state.blobs, app.state.search_index)
    assert await again.claim() == 1  # at once, not when a lease runs out
    await asyncio.gather(*again.tasks)
    assert (await lease_of(app, store_id))[0] == "completed"


async def test_an_outcome_is_written_only_under_its_own_claim(
    client: httpx.AsyncClient, app: Any
) -> None:
    store_id, index, worker = await indexing(client, app)
    async with app.state.sessionmaker() as session:  # another claim took the file meanwhile
        await session.execute(update(VectorStoreFileRow).where(
            VectorStoreFileRow.vector_store_id == store_id).values(lease_expires_at=1.0))
        await session.commit()
    index.release.set()
    await asyncio.gather(*worker.tasks)
    assert await lease_of(app, store_id) == ("in_progress", 1.0)
