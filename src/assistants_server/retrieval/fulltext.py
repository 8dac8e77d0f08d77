"""Keyword ranking on the database's own full-text index: FTS5 on SQLite, tsvector on PostgreSQL.

A question becomes its distinct content words: runs of letters and digits, lowercased, English
stopwords dropped, at most `MAX_TERMS`. They are matched with OR semantics (a chunk holding any
of them is a candidate), each passed as a quoted FTS5 phrase or through `plainto_tsquery`, so no
user text can form query syntax. A question made only of stopwords matches nothing.

Scores run from 0 to 1 and mean, on both databases, "the share of the question's information
the chunk holds": each word weighs its inverse document frequency (idf), and words that appear
in no indexed chunk are ignored.

- SQLite ranks by FTS5's bm25 and scores `min(1, bm25 / sum(idf))`, with FTS5's own idf (over
  every chunk in the database). bm25 gives a word `idf * tf * (k1 + 1) / (tf + k1 * length
  factor)`, which is exactly its idf for one occurrence in a chunk of average length; so a
  chunk of average length holding each word once scores 1, one holding half the weight 0.5.
  Repeats and short chunks raise a score (to the cap), long chunks lower it. FTS5 gives a word
  found in over half of all chunks an idf of ~0; such words are left out of the match (they
  cannot change the ranking, only make it slower) unless nothing else is left.
- PostgreSQL scores `sum(idf of the words present) / sum(idf of all words)`, with
  `idf = ln(1 + (N - df + 0.5) / (df + 0.5))` over the searched chunks, so a chunk holding every
  word scores 1; equal scores are ordered by `ts_rank`, which counts repeats.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

MAX_TERMS = 32
# PostgreSQL's english.stop (so no word is dropped by one database and kept by the other),
# and a few more words that questions are made of.
_STOPWORDS = """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom
    this that these those am is are was were be been being have has had having do does did
    doing a an the and but if or because as until while of at by for with about against
    between into through during before after above below to from up down in out on off over
    under again further then once here there when where why how all any both each few more most
    other some such no nor not only own same so than too very s t can will just don should now
    also could would may might must shall us
"""
STOPWORDS = frozenset(_STOPWORDS.split())
_WORD = re.compile(r"[^\W_]+")
# FTS5 clamps a word's idf to this when it is found in half of the chunks or more.
_FTS5_MIN_IDF = 1e-6


@dataclass(slots=True, frozen=True)
class Scope:
    """The chunks a search may return: those of these stores, and of these files if given."""

    vector_store_ids: Sequence[str]
    file_ids: Collection[str] | None = None

    def where(self) -> str:
        files = " AND c.file_id IN :file_ids" if self.file_ids is not None else ""
        return f"c.vector_store_id IN :store_ids{files}"

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"store_ids": list(self.vector_store_ids)}
        if self.file_ids is not None:
            params["file_ids"] = list(self.file_ids)
        return params


def query_terms(query: str) -> list[str]:
    """The question's distinct content words, in order."""
    words = (word for word in _WORD.findall(query.lower()) if word not in STOPWORDS)
    return list(dict.fromkeys(words))[:MAX_TERMS]


async def keyword_scores(
    session: AsyncSession, scope: Scope, terms: Sequence[str], limit: int
) -> dict[int, float]:
    """Up to `limit` best chunks for `terms` (OR), as pk -> score in 0..1, in the database's
    ranking order (which also orders chunks of equal score)."""
    if not terms or not scope.vector_store_ids:
        return {}
    if session.get_bind().dialect.name == "sqlite":
        return await _sqlite_scores(session, scope, terms, limit)
    return await _postgresql_scores(session, scope, terms, limit)


def _statement(sql: str, scope: Scope) -> TextClause:
    statement = text(sql).bindparams(bindparam("store_ids", expanding=True))
    if scope.file_ids is not None:
        statement = statement.bindparams(bindparam("file_ids", expanding=True))
    return statement


async def _sqlite_scores(
    session: AsyncSession, scope: Scope, terms: Sequence[str], limit: int
) -> dict[int, float]:
    phrases = [f'"{term}"' for term in terms]  # [^\W_]+ holds no '"': always one phrase
    counts = ", ".join(
        f"(SELECT count(*) FROM search_chunks_fts WHERE search_chunks_fts MATCH :p{i})"
        for i in range(len(phrases)))
    row = (await session.execute(
        text(f"SELECT (SELECT count(*) FROM search_chunks), {counts}"),
        {f"p{i}": phrase for i, phrase in enumerate(phrases)})).one()
    total, counted = row[0], zip(phrases, row[1:], strict=True)
    found = [(phrase, _fts5_idf(total, df)) for phrase, df in counted if df]
    if not found:
        return {}
    informative = [p for p, idf in found if idf > _FTS5_MIN_IDF] or [p for p, _ in found]
    rows = await session.execute(_statement(f"""
        SELECT c.pk, min(1.0, -bm25(search_chunks_fts) / :weight)
        FROM search_chunks_fts JOIN search_chunks AS c ON c.pk = search_chunks_fts.rowid
        WHERE search_chunks_fts MATCH :match AND {scope.where()}
        ORDER BY bm25(search_chunks_fts), c.pk LIMIT :limit""", scope), {
        "weight": sum(idf for _, idf in found), "match": " OR ".join(informative),
        "limit": limit, **scope.params()})
    return {int(pk): max(0.0, float(score)) for pk, score in rows}


def _fts5_idf(total: int, df: int) -> float:
    """The idf FTS5's bm25() gives a phrase found in `df` of `total` rows."""
    idf = math.log((total - df + 0.5) / (df + 0.5))
    return idf if idf > 0 else _FTS5_MIN_IDF


async def _postgresql_scores(
    session: AsyncSession, scope: Scope, terms: Sequence[str], limit: int
) -> dict[int, float]:
    n = range(len(terms))
    words = ", ".join(f"plainto_tsquery('english', :t{i}) AS q{i}" for i in n)
    present = ", ".join(f"c.text_search @@ q.q{i} AS m{i}" for i in n)
    counts = ", ".join(f"count(*) FILTER (WHERE m{i}) AS df{i}" for i in n)
    idf = ", ".join(f"ln(1 + (s.n - s.df{i} + 0.5) / (s.df{i} + 0.5)) AS w{i}" for i in n)
    known = " + ".join(f"CASE WHEN i.df{i} > 0 THEN i.w{i} ELSE 0 END" for i in n)
    held = " + ".join(f"CASE WHEN m.m{i} THEN w.w{i} ELSE 0 END" for i in n)
    # The tsqueries are built once (MATERIALIZED), not per row. Each matching row is read once
    # (its tsvector is stored inline) for ts_rank and the words it holds; each word's df in the
    # scope comes from the same rows, and its idf is computed once.
    rows = await session.execute(_statement(f"""
        WITH q AS MATERIALIZED (
            SELECT {words}, {" || ".join(f"plainto_tsquery('english', :t{i})" for i in n)}
                   AS query),
        m AS (
            SELECT c.pk, ts_rank(c.text_search, q.query) AS rank, {present}
            FROM search_chunks AS c, q
            WHERE {scope.where()} AND c.text_search @@ q.query),
        s AS (
            SELECT {counts}, (SELECT count(*)::float8 FROM search_chunks AS c
                              WHERE {scope.where()}) AS n
            FROM m),
        i AS (SELECT s.*, {idf} FROM s),
        w AS MATERIALIZED (SELECT i.*, {known} AS known FROM i)
        SELECT m.pk, ({held}) / w.known AS score FROM m, w
        ORDER BY score DESC, m.rank DESC, m.pk LIMIT :limit""", scope), {
        **{f"t{i}": term for i, term in enumerate(terms)}, "limit": limit, **scope.params()})
    return {int(pk): min(1.0, max(0.0, float(score))) for pk, score in rows}
