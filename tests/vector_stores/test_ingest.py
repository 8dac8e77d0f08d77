"""The ingestion worker on its own: a stopped worker releases the files it was indexing, an
outcome is written only under the claim that produced it, and a large file's chunks are written
in batches that no search sees before the file is complete and no detach or cancel leaves
behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from assistants_server.db.models import VectorStoreFileRow
from assistants_server.retrieval.index import PreparedChunks
from assistants_server.retrieval.rows import ChunkRow
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


class PausingLeases:
    """The worker's leases, but the `pause_at`-th batch write waits until released."""

    def __init__(self, inner: Any, pause_at: int) -> None:
        self.inner, self.pause_at, self.writes = inner, pause_at, 0
        self.entered, self.release = asyncio.Event(), asyncio.Event()

    @asynccontextmanager
    async def writing(self, key: int) -> AsyncIterator[Any]:
        self.writes += 1
        if self.writes == self.pause_at:
            self.entered.set()
            await self.release.wait()
        async with self.inner.writing(key) as condition:
            yield condition

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def chunks_of(app: Any, file_id: str) -> list[int]:
    async with app.state.sessionmaker() as session:
        return list(await session.scalars(select(ChunkRow.chunk_index).where(
            ChunkRow.file_id == file_id).order_by(ChunkRow.chunk_index)))


async def half_written(client: httpx.AsyncClient, app: Any) -> tuple[str, str, PausingLeases,
                                                                        Ingestor]:
    """A file of 12 chunks being indexed 3 per transaction, held after two batches."""
    words = " ".join(f"word{i}" for i in range(1200)) + " zebra"
    file = (await client.post("/v1/files", data={"purpose": "assistants"},
                              files={"file": ("long.txt", words.encode())})).json()
    store = (await client.post("/v1/vector_stores", json={
        "file_ids": [file["id"]], "chunking_strategy": {"type": "static", "static": {
            "max_chunk_size_tokens": 200, "chunk_overlap_tokens": 0}}})).json()
    worker = Ingestor(app.state.sessionmaker, app.state.blobs, app.state.search_index,
                      batch_chunks=3)
    leases = PausingLeases(worker.leases, pause_at=4)  # 1: old chunks removed; 2, 3: batches
    worker.leases = leases  # type: ignore[assignment]
    assert await worker.claim() == 1
    await asyncio.wait_for(leases.entered.wait(), 10)
    return str(store["id"]), str(file["id"]), leases, worker


async def search(client: httpx.AsyncClient, store_id: str, query: str) -> list[Any]:
    response = await client.post(f"/v1/vector_stores/{store_id}/search", json={"query": query})
    return list(response.json()["data"])


async def test_a_large_file_is_written_in_batches_and_searched_only_once_complete(
    client: httpx.AsyncClient, app: Any
) -> None:
    store_id, file_id, leases, worker = await half_written(client, app)
    assert await chunks_of(app, file_id) == list(range(6))  # two batches are in
    assert await search(client, store_id, "word5") == []  # but not searchable yet
    leases.release.set()
    await asyncio.gather(*worker.tasks)
    assert (await lease_of(app, store_id))[0] == "completed"
    indexes = await chunks_of(app, file_id)
    assert indexes == list(range(len(indexes))) and len(indexes) > 6
    [hit] = [hit for hit in await search(client, store_id, "zebra")]
    assert "zebra" in hit["content"][0]["text"]


@pytest.mark.parametrize("how", ["detached", "cancelled"])
async def test_a_file_left_between_batches_keeps_no_chunks(
    client: httpx.AsyncClient, app: Any, how: str
) -> None:
    store_id, file_id, leases, worker = await half_written(client, app)
    if how == "detached":
        response = await client.delete(f"/v1/vector_stores/{store_id}/files/{file_id}")
    else:
        async with app.state.sessionmaker() as session:  # as a batch cancel does
            await session.execute(update(VectorStoreFileRow).where(
                VectorStoreFileRow.vector_store_id == store_id).values(
                status="cancelled", lease_expires_at=None))
            await session.commit()
    leases.release.set()
    await asyncio.gather(*worker.tasks)
    assert await chunks_of(app, file_id) == []
    if how == "detached":
        assert response.json()["deleted"] is True
    else:
        assert await lease_of(app, store_id) == ("cancelled", None)
