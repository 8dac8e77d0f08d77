"""Vector store ingestion: how long a 10 MB text file takes from attaching it to a vector store
until it is searchable (parsed, chunked 800/400, indexed), with no embeddings endpoint.

Starts `assistants-server serve` as a subprocess on a free loopback port (SQLite in a temp dir,
or PostgreSQL in a throwaway schema with --database-url), uploads a generated English-like text
of --megabytes, creates a vector store with it and polls the store until its file completed.
Baselines in the same run: the upload of the same bytes (moving them through the server), and
tokenizing the same text in this process (the work chunking cannot avoid). Goal: <= 10 s for
10 MB. Prints a table, writes JSON to bench/results/, exits 0.

    .venv/bin/python bench/ingest.py [--database-url URL] [--megabytes 10] [--rounds 3]
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from harness import (
    HEADERS,
    RESULTS,
    BenchError,
    argument_parser,
    checked,
    drop_schema,
    free_port,
    machine,
    start,
    stop,
)

GOAL_SECONDS = 10.0
WORDS = [
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
    "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
    "an", "they", "you", "were", "her", "she", "there", "been", "one", "all", "we", "their",
    "has", "would", "when", "if", "so", "no", "will", "more", "can", "said", "who", "about",
    "out", "up", "what", "some", "them", "into", "only", "time", "new", "like", "revenue",
    "quarter", "report", "customer", "shipping", "refund", "warranty", "policy", "account",
    "password", "delivery", "product", "service", "support", "invoice", "payment", "contract",
    "agreement", "schedule", "engineering", "manufacturing", "regional", "international",
    "subsidiary", "acquisition"
]


def document(megabytes: float, seed: int = 7) -> str:
    """Sentences of Zipf-distributed words, in paragraphs, until the size is reached."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]
    target, parts, size = int(megabytes * 1_000_000), [], 0
    while size < target:
        words = rng.choices(WORDS, weights, k=rng.randint(8, 24))
        sentence = " ".join(words).capitalize() + (". " if rng.random() > 0.1 else ".\n\n")
        parts.append(sentence)
        size += len(sentence)
    return "".join(parts)


async def ingest_once(api: httpx.AsyncClient, data: bytes) -> dict[str, float]:
    began = time.perf_counter()
    file = checked(await api.post("/v1/files", data={"purpose": "assistants"},
                                  files={"file": ("big.txt", data, "text/plain")}))
    uploaded = time.perf_counter()
    store = checked(await api.post("/v1/vector_stores", json={"file_ids": [file["id"]]}))
    while True:
        shown = checked(await api.get(f"/v1/vector_stores/{store['id']}"))
        if shown["file_counts"]["in_progress"] == 0:
            break
        await asyncio.sleep(0.05)
    done = time.perf_counter()
    if shown["file_counts"]["completed"] != 1:
        listed = checked(await api.get(f"/v1/vector_stores/{store['id']}/files"))
        raise BenchError(f"ingestion failed: {listed['data'][0]['last_error']}")
    hits = checked(await api.post(f"/v1/vector_stores/{store['id']}/search",
                                  json={"query": "refund policy warranty"}))
    if not hits["data"]:
        raise BenchError("the ingested file is not searchable")
    return {"upload_s": uploaded - began, "ingest_s": done - uploaded}


def tokenize_seconds(text: str) -> float:
    from assistants_server.tokens import encoding as tokenizer

    encoding = tokenizer()
    began = time.perf_counter()
    encoding.encode_ordinary(text)
    return time.perf_counter() - began


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--megabytes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    text = document(args.megabytes)
    data = text.encode()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    schema = f"bench_ingest_{int(time.time())}"
    url = f"http://127.0.0.1:{free_port()}"
    env = {"ASSISTANTS_DATA_DIR": str(tmp), "ASSISTANTS_LOG_LEVEL": "warning"}
    if args.database_url:
        env |= {"ASSISTANTS_DATABASE_URL": args.database_url, "ASSISTANTS_DATABASE_SCHEMA": schema}
    server = None
    rounds: list[dict[str, float]] = []
    try:
        server = start([sys.executable, "-m", "assistants_server", "serve", "--port",
                        url.rsplit(":", 1)[1]], env, tmp / "server.log", url + "/health")

        async def run_all() -> None:
            async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=120) as api:
                for _ in range(args.rounds):
                    rounds.append(await ingest_once(api, data))
        asyncio.run(run_all())
    except (BenchError, httpx.HTTPError) as exc:
        log = (tmp / "server.log").read_text()[-3000:] if (tmp / "server.log").exists() else ""
        print(f"benchmark aborted: {exc!r}\n{log}")
        return 0
    finally:
        stop(server)
        if args.database_url:
            asyncio.run(drop_schema(args.database_url, schema))
        shutil.rmtree(tmp, ignore_errors=True)
    tokenize = statistics.median(tokenize_seconds(text) for _ in range(3))
    ingest = statistics.median(r["ingest_s"] for r in rounds)
    upload = statistics.median(r["upload_s"] for r in rounds)
    database = "postgresql" if args.database_url else "sqlite"
    print(f"ingestion of {len(data) / 1e6:.1f} MB of text ({database}), median of {args.rounds}")
    print(f"  attach -> searchable     {ingest:7.2f} s   (goal <= {GOAL_SECONDS:.0f} s: "
          f"{'met' if ingest <= GOAL_SECONDS else 'MISSED'})")
    print(f"  baseline: upload         {upload:7.2f} s   ratio {ingest / upload:5.1f}x")
    print(f"  baseline: tokenize only  {tokenize:7.2f} s   ratio {ingest / tokenize:5.1f}x")
    print(f"  throughput               {len(data) / 1e6 / ingest:7.2f} MB/s")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ingest-{database}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"database": database, "machine": machine(), "bytes": len(data),
                               "goal_s": GOAL_SECONDS, "rounds": rounds,
                               "tokenize_s": tokenize}, indent=2))
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
