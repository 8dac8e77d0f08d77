"""Searching vector stores: the `/search` endpoint and the file_search tool share this."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistants_server.db.models import FileRow, VectorStoreFileRow, VectorStoreRow
from assistants_server.retrieval.index import SearchIndex
from assistants_server.vector_stores.filters import matches
from assistants_server.vector_stores.schemas import SearchResult
from assistants_server.vector_stores.service import is_expired, touch


async def search_stores(
    session: AsyncSession, index: SearchIndex, stores: Sequence[VectorStoreRow],
    queries: Sequence[str], *, max_results: int, score_threshold: float = 0.0,
    filters: dict[str, Any] | None = None,
) -> list[SearchResult]:
    """The best chunks of the stores' indexed files for `queries`; expired stores are skipped
    and the others count as used."""
    now = int(time.time())
    live = [store for store in stores if not is_expired(store, now)]
    if not live or not any(q.strip() for q in queries):
        return []
    files = list(await session.execute(
        select(VectorStoreFileRow.id, VectorStoreFileRow.attributes).where(
            VectorStoreFileRow.vector_store_id.in_([s.id for s in live]),
            VectorStoreFileRow.status == "completed")))
    attributes = {file_id: attrs or {} for file_id, attrs in files}
    # Only completed files: a file being indexed again, or cancelled, may still have chunks.
    allowed = {file_id for file_id, attrs in attributes.items()
               if filters is None or matches(filters, attrs)}
    if not allowed:
        await touch(session, live, now)
        return []
    hits = await index.search(session, [s.id for s in live], list(queries), limit=max_results,
                              score_threshold=score_threshold, file_ids=allowed)
    # After the search: it may call the embeddings endpoint, and must not hold a write lock.
    await touch(session, live, now)
    names = dict((await session.execute(select(FileRow.id, FileRow.filename).where(
        FileRow.id.in_({hit.file_id for hit in hits})))).all())
    return [SearchResult(file_id=hit.file_id, filename=names.get(hit.file_id, hit.file_id),
                         score=round(hit.score, 6), attributes=attributes.get(hit.file_id, {}),
                         content=[{"type": "text", "text": hit.text}])
            for hit in hits]


POLL_SECONDS = 0.2


async def wait_for_ingestion(
    sessionmaker: async_sessionmaker[AsyncSession], store_ids: Sequence[str], seconds: float,
) -> None:
    """Until no file of the stores is still being indexed, or `seconds` pass. The database is
    the truth (the indexing process may be another one); no transaction stays open between
    looks, and a cancel of the run ends the wait at once."""
    deadline = time.monotonic() + seconds
    while store_ids:
        async with sessionmaker() as session:
            pending = await session.scalar(select(VectorStoreFileRow.pk).where(
                VectorStoreFileRow.vector_store_id.in_(store_ids),
                VectorStoreFileRow.status == "in_progress").limit(1))
        if pending is None or time.monotonic() >= deadline:
            return
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))


async def unsearchable(
    session: AsyncSession, store_ids: Sequence[str],
) -> list[tuple[str, str, str]]:
    """The stores' files a search could not look into: (file id, filename, why)."""
    rows = await session.execute(
        select(VectorStoreFileRow.id, VectorStoreFileRow.status, VectorStoreFileRow.last_error,
               FileRow.filename)
        .join(FileRow, FileRow.id == VectorStoreFileRow.id, isouter=True)
        .where(VectorStoreFileRow.vector_store_id.in_(store_ids),
               VectorStoreFileRow.status.in_(("in_progress", "failed")))
        .order_by(VectorStoreFileRow.pk))
    found = []
    for file_id, status, last_error, filename in rows:
        why = ("it is still being indexed" if status == "in_progress" else
               "it could not be indexed: " + str((last_error or {}).get("message", "an error")))
        found.append((file_id, filename or file_id, why))
    return found
