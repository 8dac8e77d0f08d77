"""The search index behind file_search: chunks of vector store files, stored and searched.

Writing is split so that no transaction waits on HTTP: `prepare` embeds the chunks (when an
embedder is configured) and touches no database; `add` (or `append`, batch by batch, for a
large file) then writes them in the caller's session, which the caller commits. Searching
embeds the questions first, before its first query.

Scores run from 0 to 1, higher is better, and `score_threshold` compares with them:

- keyword only (no embedder): the share of the question's information a chunk holds, as
  `retrieval.fulltext` defines it (1: it holds every word of the question that the index knows);
- hybrid (an embedder): `vector_weight * cosine + (1 - vector_weight) * keyword score`, cosine
  clipped to 0..1, over the best `4 * limit` (at least 64) chunks by each measure; a chunk
  outside the keyword candidates counts as no keyword match, and a chunk stored without an
  embedding (indexed before the embedder was configured) keeps its keyword score.

Several questions search as one: each chunk keeps its best score over them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sqlalchemy import ColumnElement, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.backends.embeddings import Embedder, EmbeddingError, Vectors
from assistants_server.retrieval.fulltext import Scope, keyword_scores, query_terms
from assistants_server.retrieval.rows import ChunkRow
from assistants_server.retrieval.vectors import Pks, VectorCache

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class Hit:
    vector_store_id: str
    file_id: str
    chunk_index: int
    text: str
    score: float  # 0..1, higher is better


@dataclass(slots=True, frozen=True, eq=False)
class PreparedChunks:
    """A file's chunks as (text, tokens) in order, with their unit vectors when embedded;
    `first` is the place of the first of them in the file (a batch of a larger file)."""

    chunks: tuple[tuple[str, int], ...]
    vectors: Vectors | None = None
    first: int = 0

    def batches(self, size: int) -> Iterator[PreparedChunks]:
        """The chunks in runs of at most `size`, each knowing its place in the file."""
        for start in range(0, len(self.chunks), size):
            vectors = None if self.vectors is None else self.vectors[start:start + size]
            yield PreparedChunks(self.chunks[start:start + size], vectors, self.first + start)


class SearchIndex(Protocol):
    """What vector stores and the file_search tool need of an index."""

    async def prepare(self, chunks: Sequence[tuple[str, int]]) -> PreparedChunks: ...

    async def add(self, session: AsyncSession, vector_store_id: str, file_id: str,
                  prepared: PreparedChunks) -> None: ...

    async def append(self, session: AsyncSession, vector_store_id: str, file_id: str,
                     prepared: PreparedChunks) -> None: ...

    async def remove(self, session: AsyncSession, vector_store_id: str,
                     file_id: str | None = None, *,
                     unless: ColumnElement[bool] | None = None) -> None: ...

    async def search(
        self, session: AsyncSession, vector_store_ids: Sequence[str], queries: Sequence[str],
        *, limit: int, score_threshold: float = 0.0, file_ids: Collection[str] | None = None,
    ) -> list[Hit]: ...


class DatabaseSearchIndex:
    """Keyword search on the database's full-text index, hybrid with cosine similarity over
    stored embeddings when `embedder` is given. One instance per process: it caches vectors."""

    def __init__(
        self, embedder: Embedder | None = None, *, vector_weight: float = 0.7,
        cache_bytes: int = 256 * 2**20,
    ) -> None:
        if not 0.0 <= vector_weight <= 1.0:
            raise ValueError("vector_weight must be between 0 and 1")
        self.embedder, self.vector_weight = embedder, vector_weight
        self._vectors = VectorCache(cache_bytes)

    async def prepare(self, chunks: Sequence[tuple[str, int]]) -> PreparedChunks:
        """Embed the chunks; call outside any transaction (raises `EmbeddingError`)."""
        # PostgreSQL text cannot hold NUL, and it carries nothing a reader wants.
        clean = tuple((chunk.replace("\x00", ""), tokens) for chunk, tokens in chunks)
        if self.embedder is None or not clean:
            return PreparedChunks(clean)
        vectors = await self.embedder.embed([chunk for chunk, _ in clean])
        if len(vectors) != len(clean):
            raise EmbeddingError(f"{len(vectors)} vectors for {len(clean)} chunks")
        return PreparedChunks(clean, _unit(vectors))

    async def add(
        self, session: AsyncSession, vector_store_id: str, file_id: str,
        prepared: PreparedChunks,
    ) -> None:
        """Store the file's chunks in the store, replacing any it had (so a retry is safe)."""
        await self.remove(session, vector_store_id, file_id)
        await self.append(session, vector_store_id, file_id, prepared)

    async def append(
        self, session: AsyncSession, vector_store_id: str, file_id: str,
        prepared: PreparedChunks,
    ) -> None:
        """Store chunks of the file after those it has (a batch of a large file)."""
        vectors = prepared.vectors
        rows = [{"vector_store_id": vector_store_id, "file_id": file_id,
                 "chunk_index": prepared.first + i, "text": chunk, "tokens": tokens,
                 "embedding": None if vectors is None else vectors[i].astype("<f4").tobytes()}
                for i, (chunk, tokens) in enumerate(prepared.chunks)]
        if rows:
            await session.execute(insert(ChunkRow), rows)

    async def remove(
        self, session: AsyncSession, vector_store_id: str, file_id: str | None = None, *,
        unless: ColumnElement[bool] | None = None,
    ) -> None:
        """Delete the file's chunks from the store, or every chunk of it when `file_id` is
        None; none if `unless` holds when the statement runs."""
        statement = delete(ChunkRow).where(ChunkRow.vector_store_id == vector_store_id)
        if file_id is not None:
            statement = statement.where(ChunkRow.file_id == file_id)
        if unless is not None:
            statement = statement.where(~unless)
        await session.execute(statement.execution_options(synchronize_session=False))
        self._vectors.forget([vector_store_id])

    async def search(
        self, session: AsyncSession, vector_store_ids: Sequence[str], queries: Sequence[str],
        *, limit: int, score_threshold: float = 0.0, file_ids: Collection[str] | None = None,
    ) -> list[Hit]:
        """The best `limit` chunks of the stores (of `file_ids` only, if given) for any of
        `queries`, best first, none scoring under `score_threshold`."""
        if isinstance(queries, str):  # a str is a Sequence[str] of characters
            queries = [queries]
        questions = [q for q in dict.fromkeys(queries) if q.strip()]
        stores = list(dict.fromkeys(vector_store_ids))
        if limit < 1 or not stores or not questions or (file_ids is not None and not file_ids):
            return []
        scope = Scope(stores, None if file_ids is None else set(file_ids))
        vectors = await self._embed_questions(questions)
        for _ in range(2):
            ranks = await self._ranks(session, scope, questions, vectors, limit)
            ranked = sorted((pk for pk, (score, _) in ranks.items() if score >= score_threshold),
                            key=lambda pk: (-ranks[pk][0], -ranks[pk][1], pk))[:limit]
            hits = await _fetch(session, ranked, {pk: ranks[pk][0] for pk in ranked})
            if len(hits) == len(ranked) or vectors is None:
                break
            # The vector cache knew a chunk another process has since removed: reload.
            self._vectors.forget(stores)
        return hits

    async def _embed_questions(self, questions: list[str]) -> Vectors | None:
        if self.embedder is None:
            return None
        try:
            return _unit(await self.embedder.embed(questions))
        except EmbeddingError as exc:
            log.warning("searching by keywords only: %s", exc)
            return None

    async def _ranks(
        self, session: AsyncSession, scope: Scope, questions: list[str],
        vectors: Vectors | None, limit: int,
    ) -> dict[int, tuple[float, int]]:
        """pk -> (best score over the questions, minus its place in the database's keyword
        ranking): equal scores (say, two chunks holding every word) keep that ranking."""
        candidates = max(4 * limit, 64)
        stores = [] if vectors is None else await self._vectors.load(
            session, scope.vector_store_ids)
        # Off the event loop (numpy lets go of the GIL), so streams served meanwhile do not
        # stall: selecting the scope's rows copies them.
        scoped = [await asyncio.to_thread(store.scoped, scope.file_ids) for store in stores]
        best: dict[int, tuple[float, int]] = {}
        for i, question in enumerate(questions):
            keyword = await keyword_scores(session, scope, query_terms(question), candidates)
            places = {pk: place for place, pk in enumerate(keyword)}
            scores = keyword if vectors is None else await self._blend(
                keyword, scoped, vectors[i], candidates)
            for pk, score in scores.items():
                rank = (score, -places.get(pk, candidates))
                best[pk] = max(best.get(pk, rank), rank)
        return best

    async def _blend(
        self, keyword: dict[int, float], scoped: list[tuple[Pks, Vectors]], vector: Vectors,
        candidates: int,
    ) -> dict[int, float]:
        """Hybrid scores of the best chunks by cosine and of the keyword candidates."""
        blended = dict(keyword)
        matched = np.fromiter(keyword, np.int64, len(keyword))
        for pks, matrix in scoped:
            if len(pks) == 0 or matrix.shape[1] != vector.shape[0]:
                continue
            # Reading the whole matrix takes milliseconds: off the event loop.
            cosines = await asyncio.to_thread(np.matmul, matrix, vector)
            nearest = (np.argpartition(-cosines, candidates - 1)[:candidates]
                       if len(pks) > candidates else np.arange(len(pks)))
            at = np.minimum(np.searchsorted(pks, matched), len(pks) - 1)
            rows = np.union1d(nearest, at[pks[at] == matched])
            for pk, cosine in zip(pks[rows].tolist(), np.clip(cosines[rows], 0, 1).tolist(),
                                  strict=True):
                blended[pk] = (self.vector_weight * cosine
                               + (1 - self.vector_weight) * keyword.get(pk, 0.0))
        return blended


def _unit(vectors: Vectors) -> Vectors:
    vectors = vectors.astype(np.float32, copy=False)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: Vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return unit


async def _fetch(session: AsyncSession, ranked: list[int], scores: dict[int, float]) -> list[Hit]:
    if not ranked:
        return []
    rows = {row.pk: row for row in await session.execute(
        select(ChunkRow.pk, ChunkRow.vector_store_id, ChunkRow.file_id, ChunkRow.chunk_index,
               ChunkRow.text).where(ChunkRow.pk.in_(ranked)))}
    return [Hit(row.vector_store_id, row.file_id, row.chunk_index, row.text, scores[pk])
            for pk in ranked if (row := rows.get(pk)) is not None]
