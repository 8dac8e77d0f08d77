"""The ingestion worker: files attached to vector stores are parsed, chunked and indexed in
the background, a bounded number at a time.

A file is claimed with a lease on its row (`db/leases.py`, as runs are), so several processes
share the work. The lease is renewed while the file is being indexed, however long that takes
(a large PDF, slow embeddings); a file whose process died is claimed again, and indexed anew,
when its lease runs out. Parsing runs in a process of its own within limits
(`retrieval/isolated.py`), chunking in a worker thread; embedding calls happen
before the index is written, so no transaction stays open across them. The chunks are written
in short transactions of a bounded number each, then the outcome, each only if the file is
still `in_progress` in its store under this worker's claim: a cancel or a detach that came
meanwhile wins, and so does a claim that replaced this one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Any

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistants_server.db.leases import VECTOR_STORE_FILES, Leases
from assistants_server.db.models import FileRow, VectorStoreFileRow
from assistants_server.files.blobs import BlobStore
from assistants_server.retrieval.chunking import chunk_text
from assistants_server.retrieval.index import PreparedChunks, SearchIndex
from assistants_server.retrieval.isolated import extract_isolated
from assistants_server.retrieval.parsing import UnparsableFile
from assistants_server.waiting import wait_set

log = logging.getLogger(__name__)
SERVER_ERROR = {"code": "server_error",
                "message": "The server had an error while indexing this file."}


class Ingestor:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], blobs: BlobStore,
        index: SearchIndex, *, concurrency: int = 2, lease_seconds: float = 300.0,
        poll_seconds: float = 1.0, batch_chunks: int = 128, parse_seconds: float = 120.0,
        parse_memory_mb: int = 1024,
    ) -> None:
        self.sessionmaker, self.blobs, self.index = sessionmaker, blobs, index
        self.concurrency, self.lease_seconds = concurrency, lease_seconds
        self.poll_seconds, self.batch_chunks = poll_seconds, batch_chunks
        self.parse_seconds, self.parse_memory_bytes = parse_seconds, parse_memory_mb << 20
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # The files being indexed here, by pk: claimed, renewed, released at stop.
        self.leases = Leases(sessionmaker, VECTOR_STORE_FILES, self.owner, lease_seconds)
        self.tasks: set[asyncio.Task[None]] = set()
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
        await self.leases.stop(release=True)

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
        claimed = await self.leases.claim(
            VectorStoreFileRow.status == "in_progress", free, (VectorStoreFileRow.pk,))
        for pk in claimed.keys:
            task = asyncio.create_task(self.ingest(pk), name=f"ingest-{pk}")
            self.tasks.add(task)
            task.add_done_callback(self._done)
        return len(claimed.keys)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self._wakeup.set()  # room for another file

    async def ingest(self, pk: int) -> None:
        """Index one claimed file and write its outcome. The lease is renewed meanwhile;
        when indexing is cancelled (stop) the file stays held, for stop() to release."""
        try:
            await self._ingest(pk)
        except Exception:  # left leased: claimed again, here or elsewhere, when it runs out
            log.exception("indexing vector store file %s failed", pk)
        self.leases.drop(pk)

    async def _ingest(self, pk: int) -> None:
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
        await self._finish(pk, store_id, file_id, outcome, prepared)

    async def _prepare(
        self, file: FileRow, static: dict[str, int],
    ) -> tuple[PreparedChunks, int]:
        try:
            data = b"".join([part async for part in await self.blobs.open(file.id)])
        except FileNotFoundError:
            raise UnparsableFile("invalid_file", f"The content of {file.filename} is missing "
                                 "from this server's file store.") from None
        text = await extract_isolated(data, file.filename, seconds=self.parse_seconds,
                                      memory_bytes=self.parse_memory_bytes)
        chunks = await asyncio.to_thread(chunk_text, text, static["max_chunk_size_tokens"],
                                         static["chunk_overlap_tokens"])
        prepared = await self.index.prepare([(c.text, c.tokens) for c in chunks])
        return prepared, usage_bytes(file.bytes, prepared)

    async def _finish(
        self, pk: int, store_id: str, file_id: str, outcome: dict[str, Any],
        prepared: PreparedChunks | None,
    ) -> None:
        """Write the chunks, then the outcome, if the file is still ours to finish: still
        `in_progress` under this claim."""
        if prepared is not None and not await self._write_chunks(pk, store_id, file_id,
                                                                 prepared):
            return
        async with self.leases.finishing(pk) as mine, self.sessionmaker() as session:
            won = await _still_mine(session, pk, mine, lease_expires_at=None, **outcome)
            if won and prepared is None:  # failed: no chunks of it stay
                await self.index.remove(session, store_id, file_id)
            await session.commit()
        if not won:
            await self._abandon(store_id, file_id)

    async def _write_chunks(self, pk: int, store_id: str, file_id: str,
                            prepared: PreparedChunks) -> bool:
        """Replace the file's chunks, `batch_chunks` per transaction: a 10 MB file is
        thousands of chunks, and one transaction would hold SQLite's single write lock for
        seconds, stalling every other write. Searches skip a file until it is `completed`,
        so no reader sees part of one. Each batch first updates the file's row under the
        claim (on PostgreSQL a detach waits for the batch, then removes it); False when the
        claim was lost meanwhile (a detach, a cancel, another claim)."""
        for batch in (None, *prepared.batches(self.batch_chunks)):
            async with self.leases.writing(pk) as mine, self.sessionmaker() as session:
                won = await _still_mine(session, pk, mine)
                if won and batch is None:  # those of an earlier, interrupted attempt
                    await self.index.remove(session, store_id, file_id)
                elif won and batch is not None:
                    await self.index.append(session, store_id, file_id, batch)
                await session.commit()
            if not won:
                await self._abandon(store_id, file_id)
                return False
        return True

    async def _abandon(self, store_id: str, file_id: str) -> None:
        """The claim was lost: remove the chunks written under it, unless the file is being
        indexed again (that claim replaces them)."""
        async with self.sessionmaker() as session:
            await self.index.remove(session, store_id, file_id, unless=exists().where(
                VectorStoreFileRow.vector_store_id == store_id, VectorStoreFileRow.id == file_id,
                VectorStoreFileRow.status == "in_progress"))
            await session.commit()


def usage_bytes(file_bytes: int, prepared: PreparedChunks) -> int:
    """A store file's `usage_bytes`: what keeping it searchable takes, its bytes, its chunks'
    text (overlaps counted each time) and their vectors. The reference says only that it "may
    be different from the original file size"; a compatibility suite checked against the
    hosted service in 2024 found it never below that size, and so is this count."""
    text = sum(len(chunk.encode()) for chunk, _ in prepared.chunks)
    vectors = 0 if prepared.vectors is None else int(prepared.vectors.nbytes)
    return file_bytes + text + vectors


async def _still_mine(session: AsyncSession, pk: int, mine: ColumnElement[bool],
                      **values: Any) -> bool:
    """Update the file's row (with `values`, or to itself) if it is still `in_progress` under
    this claim: the write that makes what follows in the transaction conditional on it."""
    won = await session.execute(
        update(VectorStoreFileRow).where(
            VectorStoreFileRow.pk == pk, VectorStoreFileRow.status == "in_progress", mine)
        .values(values or {"status": VectorStoreFileRow.status}))
    return bool(won.rowcount == 1)  # type: ignore[attr-defined]
