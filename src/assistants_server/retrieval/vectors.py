"""Cosine similarity over vector stores' chunk embeddings, kept in this process's memory.

A store's embeddings are read once into a float32 matrix of unit rows and reused while the
store's highest chunk pk is unchanged. pks only grow (SQLite AUTOINCREMENT, PostgreSQL
sequences), so a chunk added by any process changes it; one cheap index lookup per store per
search checks it. Removals made through this process drop the store's matrix at once. A removal
by another process leaves rows the database no longer has: the search notices when it fetches
its hits' text and calls `forget` to reload. Matrices are evicted least recently used beyond
`max_bytes`.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.backends.embeddings import Vectors
from assistants_server.retrieval.rows import ChunkRow

log = logging.getLogger(__name__)
Pks = npt.NDArray[np.int64]


@dataclass(slots=True, eq=False)
class StoreVectors:
    """One store's embedded chunks: pks ascending, their files, and their unit vectors."""

    version: int
    pks: Pks
    file_ids: npt.NDArray[np.str_]
    matrix: Vectors

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes + self.pks.nbytes + self.file_ids.nbytes)

    def scoped(self, file_ids: Collection[str] | None) -> tuple[Pks, Vectors]:
        """(pks, unit vectors) of the chunks in `file_ids` (all when None): selected once per
        search, then multiplied by each of its questions."""
        if file_ids is None:
            return self.pks, self.matrix
        rows = np.flatnonzero(np.isin(self.file_ids, np.asarray(list(file_ids), dtype=np.str_)))
        return self.pks[rows], self.matrix[rows]


class VectorCache:
    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._stores: OrderedDict[str, StoreVectors] = OrderedDict()

    def forget(self, vector_store_ids: Sequence[str]) -> None:
        for store_id in vector_store_ids:
            self._stores.pop(store_id, None)

    async def load(
        self, session: AsyncSession, vector_store_ids: Sequence[str]
    ) -> list[StoreVectors]:
        """The stores' current vectors, read from the database only where they changed."""
        versions = await _versions(session, vector_store_ids)
        loaded = []
        for store_id, version in zip(vector_store_ids, versions, strict=True):
            cached = self._stores.get(store_id)
            if cached is None or cached.version != version:
                cached = await _read(session, store_id)
            self._keep(store_id, cached)
            loaded.append(cached)
        return loaded

    def _keep(self, store_id: str, vectors: StoreVectors) -> None:
        self._stores[store_id] = vectors
        self._stores.move_to_end(store_id)
        total = sum(v.nbytes for v in self._stores.values())
        while total > self.max_bytes and len(self._stores) > 1:
            _, evicted = self._stores.popitem(last=False)
            total -= evicted.nbytes


async def _versions(session: AsyncSession, vector_store_ids: Sequence[str]) -> list[int]:
    # One max() per store, each answered from the end of ix_search_chunks_store_pk.
    statement = select(*(
        select(func.max(ChunkRow.pk)).where(ChunkRow.vector_store_id == store_id)
        .scalar_subquery() for store_id in vector_store_ids))
    return [int(version or 0) for version in (await session.execute(statement)).one()]


async def _read(session: AsyncSession, store_id: str) -> StoreVectors:
    rows = (await session.execute(
        select(ChunkRow.pk, ChunkRow.file_id, ChunkRow.embedding)
        .where(ChunkRow.vector_store_id == store_id).order_by(ChunkRow.pk))).all()
    version = rows[-1].pk if rows else 0
    sizes = Counter(len(row.embedding) for row in rows if row.embedding)
    if not sizes:
        return StoreVectors(version, np.zeros(0, np.int64), np.zeros(0, np.str_),
                            np.zeros((0, 0), np.float32))
    size, _ = sizes.most_common(1)[0]
    if len(sizes) > 1:  # the embedding model changed; the other vectors cannot be compared
        log.warning("vector store %s holds embeddings of %d sizes; searching those of %d "
                    "dimensions", store_id, len(sizes), size // 4)
    kept = [row for row in rows if row.embedding and len(row.embedding) == size]
    matrix = np.frombuffer(b"".join(row.embedding for row in kept), dtype="<f4")
    return StoreVectors(
        version, np.fromiter((row.pk for row in kept), np.int64, len(kept)),
        np.asarray([row.file_id for row in kept], dtype=np.str_),
        matrix.astype(np.float32).reshape(len(kept), size // 4))
