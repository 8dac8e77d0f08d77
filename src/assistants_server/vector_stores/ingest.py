"""The ingestion worker: files attached to vector stores are parsed, chunked and indexed in
the background, a bounded number at a time.

A file is claimed with a lease on its row (as runs are), so several processes share the work
and a file whose process died is picked up again when the lease runs out. Parsing and
chunking run in worker threads; embedding calls happen before the index is written, so no
transaction stays open across them. The outcome is written only if the file is still
`in_progress` in its store: a cancel or a detach that came meanwhile wins.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistants_server.db.models import FileRow, VectorStoreFileRow
from assistants_server.files.blobs import BlobStore
from assistants_server.retrieval.chunking import chunk_text
from assistants_server.retrieval.index import SearchIndex
from assistants_server.retrieval.parsing import UnparsableFile, extract_text
from assistants_server.waiting import wait_set

log = logging.getLogger(__name__)
SERVER_ERROR = {"code": "server_error",
                "message": "The server had an error while indexing this file."}


class Ingestor:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], blobs: BlobStore,
        index: SearchIndex, *, concurrency: int = 2, lease_seconds: float = 300.0,
        poll_seconds: float = 1.0,
    ) -> None:
        self.sessionmaker, self.blobs, self.index = sessionmaker, blobs, index
        self.concurrency, self.lease_seconds = concurrency, lease_seconds
        self.poll_seconds = poll_seconds
        self.tasks: set[asyncio.Task[None]] = set()
        self.held: dict[int, float] = {}  # files being indexed here: pk -> claim token
        self._wakeup = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        self._wakeup.set()

    async def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="ingestor")

    async def stop(self) -> None:
        """Stop claiming and abandon the files being indexed, releasing their claims so that
        the next process to look (this one after a restart, or another) indexes them at once
        rather than when the lease runs out."""
        tasks = [t for t in (self._loop_task, *self.tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.held:
            async with self.sessionmaker() as session:
                for pk, token in self.held.items():
                    await session.execute(update(VectorStoreFileRow).where(
                        VectorStoreFileRow.pk == pk,
                        VectorStoreFileRow.lease_expires_at == token).values(
                        lease_expires_at=None))
                await session.commit()
            self.held.clear()

    async def _loop(self) -> None:
        while True:
            try:
                await self.claim()
            except Exception:  # keep serving; the next round retries
                log.exception("ingestion round failed")
            await wait_set(self._wakeup, self.poll_seconds)
            self._wakeup.clear()

    async def claim(self) -> int:
        """Start indexing as many waiting files as there is room for; how many started."""
        free = self.concurrency - len(self.tasks)
        if free <= 0:
            return 0
        now = time.time()
        claimable = and_(VectorStoreFileRow.status == "in_progress", or_(
            VectorStoreFileRow.lease_expires_at.is_(None),
            VectorStoreFileRow.lease_expires_at < now))
        # The lease's expiry doubles as the claim's token: only the claim that set it may write
        # the outcome (a cancel, or a batch attaching the file again, clears or replaces it).
        token = now + self.lease_seconds
        claimed = []
        async with self.sessionmaker() as session:
            pks = list(await session.scalars(
                select(VectorStoreFileRow.pk).where(claimable)
                .order_by(VectorStoreFileRow.pk).limit(free)))
            for pk in pks:
                won = await session.execute(
                    update(VectorStoreFileRow).where(VectorStoreFileRow.pk == pk, claimable)
                    .values(lease_expires_at=token))
                if won.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(pk)
            await session.commit()
        for pk in claimed:
            self.held[pk] = token
            task = asyncio.create_task(self.ingest(pk, token), name=f"ingest-{pk}")
            self.tasks.add(task)
            task.add_done_callback(self._done)
        return len(claimed)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self._wakeup.set()  # room for another file

    async def ingest(self, pk: int, token: float) -> None:
        """Index one claimed file and write its outcome."""
        await self._ingest(pk, token)
        self.held.pop(pk, None)  # not on cancel: stop() releases what was left

    async def _ingest(self, pk: int, token: float) -> None:
        async with self.sessionmaker() as session:
            row = await session.get(VectorStoreFileRow, pk)
            if row is None:
                return
            file = await session.scalar(select(FileRow).where(FileRow.id == row.id))
            store_id, file_id, strategy = row.vector_store_id, row.id, row.chunking_strategy
        outcome: dict[str, Any]
        prepared = None
        try:
            if file is None:
                raise UnparsableFile("invalid_file", f"The file {file_id} no longer exists.")
            prepared, used = await self._prepare(file, strategy["static"])
        except UnparsableFile as exc:
            outcome = {"status": "failed", "last_error": {"code": exc.code,
                                                          "message": exc.message}}
        except Exception:
            log.exception("indexing file %s of vector store %s failed", file_id, store_id)
            outcome = {"status": "failed", "last_error": SERVER_ERROR}
        else:
            outcome = {"status": "completed", "last_error": None, "usage_bytes": used}
        await self._finish(pk, token, store_id, file_id, outcome, prepared)

    async def _prepare(self, file: FileRow, static: dict[str, int]) -> tuple[Any, int]:
        try:
            data = b"".join([part async for part in await self.blobs.open(file.id)])
        except FileNotFoundError:
            raise UnparsableFile("invalid_file", f"The content of {file.filename} is missing "
                                 "from this server's file store.") from None
        text = await asyncio.to_thread(extract_text, data, file.filename)
        chunks = await asyncio.to_thread(chunk_text, text, static["max_chunk_size_tokens"],
                                         static["chunk_overlap_tokens"])
        prepared = await self.index.prepare([(c.text, c.tokens) for c in chunks])
        return prepared, len(text.encode())

    async def _finish(
        self, pk: int, token: float, store_id: str, file_id: str, outcome: dict[str, Any],
        prepared: Any,
    ) -> None:
        """Write the outcome if the file is still ours to finish: still `in_progress` under
        this claim. The row is updated first, so on PostgreSQL it stays locked until the
        chunks are in, and a detach waits for them before removing them."""
        async with self.sessionmaker() as session:
            won = await session.execute(
                update(VectorStoreFileRow).where(
                    VectorStoreFileRow.pk == pk, VectorStoreFileRow.status == "in_progress",
                    VectorStoreFileRow.lease_expires_at == token)
                .values(lease_expires_at=None, **outcome))
            if won.rowcount != 1:  # type: ignore[attr-defined]
                return  # detached, cancelled or claimed again meanwhile: nothing is written
            if prepared is None:  # failed: no chunks of it stay
                await self.index.remove(session, store_id, file_id)
            else:  # replaces any chunks it had
                await self.index.add(session, store_id, file_id, prepared)
            await session.commit()
