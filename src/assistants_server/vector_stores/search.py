"""Searching vector stores: the `/search` endpoint and the file_search tool share this."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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
