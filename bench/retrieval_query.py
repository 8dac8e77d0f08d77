"""Searching a vector store: keyword-only and hybrid query latency over 10,000 chunks.

Seeds one store with --chunks chunks through `SearchIndex.prepare` and `add` (SQLite in a temp
dir, or PostgreSQL in a throwaway schema with --database-url). The text is synthetic but shaped
like prose: --words words per chunk (about 800 tokens), drawn with a Zipf distribution from a
generated vocabulary of --vocabulary words whose most frequent ones are the English stopwords,
so a chunk holds many common words and a few rare ones. Each chunk gets a random unit vector of
384 dimensions from an in-process fake embedder (no HTTP, so the time is the index's own).

Questions are templates ("How do I {a} the {b}?") filled with content words drawn from the same
distribution. Each sample opens a session as an endpoint would and times, in turn:

1. keyword: `search` on an index without an embedder (FTS5 bm25 / tsvector);
2. hybrid: `search` on the index with the fake embedder, its vector cache warm (the cold first
   search, which reads the store's vectors, is reported apart);
3. baseline: `SELECT count(*) FROM search_chunks`, one round trip that reads the table's index.

Goal: p50 <= 20 ms for keyword and hybrid. Prints a table, writes JSON to bench/results/, exits 0.

    .venv/bin/python bench/retrieval_query.py [--database-url URL] [--chunks 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from harness import RESULTS, argument_parser, drop_schema, machine, pct
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from assistants_server.config import Settings
from assistants_server.db.engine import create_engine, create_sessionmaker
from assistants_server.db.migrate import upgrade_to_head
from assistants_server.retrieval.fulltext import STOPWORDS
from assistants_server.retrieval.index import DatabaseSearchIndex, SearchIndex

GOAL_MS = 20.0
DIMENSIONS = 384
STORE = "vs_bench"
TEMPLATES = ["How do I {} the {}?", "What is the {} of a {} {}?", "{} {}",
             "Why does my {} {} when I {} it?", "Where can I find {} for {} and {}?",
             "Is there a {} {}?"]
SYLLABLES = [c + v for c in "bcdfghjklmnprstvz" for v in "aeiou"]


def parse_args() -> argparse.Namespace:
    p = argument_parser(__doc__)
    p.add_argument("--chunks", type=int, default=10_000, help="chunks in the store")
    p.add_argument("--words", type=int, default=600, help="words per chunk")
    p.add_argument("--vocabulary", type=int, default=30_000, help="distinct words")
    p.add_argument("--samples", type=int, default=300, help="timed questions")
    p.add_argument("--warmup", type=int, default=30, help="untimed questions")
    p.add_argument("--limit", type=int, default=10, help="hits per search")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


class FakeEmbedder:
    """Unit-length random vectors, the same for the same text; no HTTP."""

    async def embed(self, texts: Sequence[str]) -> Any:
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(DIMENSIONS)
                for t in texts]
        return np.asarray(rows, dtype=np.float32)


class Corpus:
    """A Zipf vocabulary whose most frequent words are the stopwords, and text drawn from it."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.rng = np.random.default_rng(args.seed)
        made: dict[str, None] = dict.fromkeys(sorted(STOPWORDS))
        while len(made) < args.vocabulary:
            made.setdefault("".join(self.rng.choice(SYLLABLES, self.rng.integers(2, 5))))
        self.words = np.asarray(list(made))
        weights = 1.0 / np.arange(1, args.vocabulary + 1)
        self.p = weights / weights.sum()
        content = weights.copy()
        content[:len(STOPWORDS)] = 0
        self.content_p = content / content.sum()

    def chunks(self, count: int, words: int) -> list[str]:
        ids = self.rng.choice(len(self.words), size=(count, words), p=self.p)
        return [" ".join(self.words[row]) + "." for row in ids]

    def questions(self, count: int) -> list[str]:
        out = []
        for i in range(count):
            template = TEMPLATES[i % len(TEMPLATES)]
            ids = self.rng.choice(len(self.words), size=template.count("{}"), p=self.content_p)
            out.append(template.format(*self.words[ids]).capitalize())
        return out


async def seed(sessions: async_sessionmaker[AsyncSession], index: SearchIndex,
               texts: list[str], words: int) -> None:
    """Twenty chunks per file, one transaction per file, as the ingestion worker writes."""
    for start in range(0, len(texts), 20):
        prepared = await index.prepare([(t, words * 4 // 3) for t in texts[start:start + 20]])
        async with sessions() as session:
            await index.add(session, STORE, f"file_{start // 20:05d}", prepared)
            await session.commit()


async def vacuum(engine: AsyncEngine) -> None:
    """What autovacuum does to a table after many inserts, on PostgreSQL (SQLite never does)."""
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
                text("VACUUM ANALYZE search_chunks"))


async def timed_search(sessions: async_sessionmaker[AsyncSession], index: SearchIndex,
                       question: str, limit: int) -> tuple[float, int]:
    """(ms, hits) of one search in a new session, as an endpoint would run it."""
    async with sessions() as session:
        t0 = time.perf_counter()
        hits = await index.search(session, [STORE], [question], limit=limit)
        return (time.perf_counter() - t0) * 1000, len(hits)


async def timed_baseline(sessions: async_sessionmaker[AsyncSession]) -> float:
    async with sessions() as session:
        t0 = time.perf_counter()
        await session.execute(text("SELECT count(*) FROM search_chunks"))
        return (time.perf_counter() - t0) * 1000


async def measure(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    indexes = {"keyword": DatabaseSearchIndex(), "hybrid": DatabaseSearchIndex(FakeEmbedder())}
    corpus = Corpus(args)
    t0 = time.perf_counter()
    await seed(sessions, indexes["hybrid"], corpus.chunks(args.chunks, args.words), args.words)
    await vacuum(engine)
    seeded = time.perf_counter() - t0
    questions = corpus.questions(args.warmup + args.samples)
    cold, _ = await timed_search(sessions, indexes["hybrid"], questions[0], args.limit)
    times: dict[str, list[float]] = {"keyword": [], "hybrid": [], "baseline": []}
    found = dict.fromkeys(times, 0)
    for i, question in enumerate(questions):
        sample = {name: await timed_search(sessions, index, question, args.limit)
                  for name, index in indexes.items()}
        sample["baseline"] = (await timed_baseline(sessions), 0)
        if i >= args.warmup:
            for name, (ms, hits) in sample.items():
                times[name].append(ms)
                found[name] += hits
    await engine.dispose()
    base = pct(times["baseline"], 50)
    return {"seed_s": seeded, "hybrid_cold_ms": cold, "questions_sample": questions[:5],
            **{name: {"p50_ms": pct(v, 50), "p95_ms": pct(v, 95), "ratio_p50": pct(v, 50) / base,
                      "mean_hits": found[name] / len(v),
                      "goal_met": name == "baseline" or pct(v, 50) <= GOAL_MS}
               for name, v in times.items()}}


def report(database: str, args: argparse.Namespace, r: dict[str, Any]) -> None:
    print(f"\n{database}: {args.chunks:,} chunks of {args.words} words, seeded in "
          f"{r['seed_s']:.1f} s; {args.samples} questions, limit {args.limit} (ms)")
    head = f"{'':<10}{'p50':>8}{'p95':>8}{'x baseline':>12}{'hits':>7}  goal p50<={GOAL_MS:g}"
    print(head + "\n" + "-" * len(head))
    for name in ("keyword", "hybrid", "baseline"):
        s = r[name]
        goal = "" if name == "baseline" else ("met" if s["goal_met"] else "MISSED")
        print(f"{name:<10}{s['p50_ms']:>8.2f}{s['p95_ms']:>8.2f}{s['ratio_p50']:>12.1f}"
              f"{s['mean_hits']:>7.1f}  {goal}")
    print(f"hybrid's first search, reading the store's vectors: {r['hybrid_cold_ms']:.0f} ms")
    print("questions such as: " + " | ".join(r["questions_sample"][1:4]))


def main() -> int:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-retrieval-"))
    schema = f"bench_retrieval_{os.getpid()}" if args.database_url else None
    settings = Settings(data_dir=tmp, database_url=args.database_url, database_schema=schema)
    database = "sqlite" if settings.is_sqlite else "postgresql"
    try:
        upgrade_to_head(settings)
        results = asyncio.run(measure(settings, args))
    finally:
        if schema and args.database_url:
            asyncio.run(drop_schema(args.database_url, schema))
        shutil.rmtree(tmp, ignore_errors=True)
    report(database, args, results)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"retrieval_query-{database}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({
        "database": database, "machine": machine(),
        "args": vars(args) | {"database_url": args.database_url and
                              args.database_url.split("@")[-1]},
        "goal_p50_ms": GOAL_MS, **results}, indent=2))
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
