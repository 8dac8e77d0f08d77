"""Latency of listing and creating messages in a 10-message thread vs a 100,000-message thread.

Starts `assistants-server serve` as a subprocess on a free loopback port (SQLite in a temporary
data dir, or PostgreSQL in a throwaway schema with --database-url), seeds both threads with a
bulk INSERT into the same database, then drives the server over keep-alive HTTP with httpx,
interleaving small- and big-thread requests. Prints p50/p95 per scenario and the big/small ratio
(goal: <= 1.2) and writes the full results as JSON to bench/results/. Always exits 0.

    .venv/bin/python bench/list_and_create.py [--database-url URL] [--messages N] [--samples N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from harness import (
    HEADERS,
    RESULTS,
    BenchError,
    argument_parser,
    drop_schema,
    free_port,
    machine,
    pct,
    start,
    stop,
)
from sqlalchemy import insert, text

from assistants_server.config import Settings
from assistants_server.db.engine import create_engine
from assistants_server.db.migrate import upgrade_to_head
from assistants_server.db.models import MessageRow, ThreadRow

GOAL = 1.2
ALPHABET = string.ascii_letters + string.digits


def parse_args() -> argparse.Namespace:
    p = argument_parser(__doc__)
    p.add_argument("--messages", type=int, default=100_000, help="size of the big thread")
    p.add_argument("--small", type=int, default=10, help="size of the small thread")
    p.add_argument("--ties", type=int, help="seeded messages sharing each created_at second "
                   "(default: all of them, the worst case for ties)")
    p.add_argument("--samples", type=int, default=400, help="timed requests per scenario/thread")
    p.add_argument("--warmup", type=int, default=100, help="untimed requests per scenario/thread")
    p.add_argument("--limit", type=int, default=10, help="page size of the list requests")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


def ids(rng: random.Random, prefix: str, n: int) -> list[str]:
    return [prefix + "".join(rng.choices(ALPHABET, k=24)) for _ in range(n)]


async def seed(settings: Settings, sizes: list[int], ties: int | None,
               rng: random.Random) -> list[list[str]]:
    """One thread per size; returns each thread's [thread_id, msg ids oldest first...]."""
    base = int(time.time()) - 3600
    engine = create_engine(settings)
    out: list[list[str]] = []
    async with engine.begin() as conn:
        for n in sizes:
            (thread_id,) = ids(rng, "thread_", 1)
            await conn.execute(insert(ThreadRow), [{
                "id": thread_id, "created_at": base, "metadata_": {}, "tool_resources": {}}])
            msg_ids = ids(rng, "msg_", n)
            rows = [{
                "id": mid, "thread_id": thread_id, "created_at": base + i // (ties or n),
                "role": "user", "status": "completed", "attachments": [], "metadata_": {},
                "content": [{"type": "text", "text": {"value": f"seeded message {i}: " + "x" * 80,
                                                      "annotations": []}}],
            } for i, mid in enumerate(msg_ids)]
            for start in range(0, n, 5000):
                await conn.execute(insert(MessageRow), rows[start:start + 5000])
            out.append([thread_id, *msg_ids])
    async with engine.connect() as conn:  # as autovacuum would on PostgreSQL; SQLite never does
        if conn.dialect.name == "postgresql":
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
                text("ANALYZE"))
    await engine.dispose()
    return out


def run(client: httpx.Client, scenarios: dict[str, Callable[[str], httpx.Request]],
        threads: dict[str, str], warmup: int, samples: int) -> dict[str, dict[str, Any]]:
    """Per scenario: warm up, then alternate small/big (order flipped every round) and time."""
    times: dict[str, dict[str, list[float]]] = {s: {"small": [], "big": []} for s in scenarios}
    items: dict[str, dict[str, int]] = {s: {} for s in scenarios}
    for name, build in scenarios.items():
        for i in range(warmup + samples):
            for size in ("small", "big") if i % 2 == 0 else ("big", "small"):
                request = build(threads[size])
                t0 = time.perf_counter()
                response = client.send(request)
                body = response.read()
                elapsed = (time.perf_counter() - t0) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"{name}/{size}: HTTP {response.status_code} {body[:300]!r}")
                if i >= warmup:
                    times[name][size].append(elapsed)
                data = json.loads(body).get("data")
                items[name][size] = len(data) if data is not None else 1
    out: dict[str, dict[str, Any]] = {}
    for name, by_size in times.items():
        stats = {size: {"p50_ms": pct(v, 50), "p95_ms": pct(v, 95), "mean_ms": statistics.fmean(v),
                        "min_ms": min(v), "max_ms": max(v), "n": len(v),
                        "items": items[name][size]} for size, v in by_size.items()}
        ratio = {f"ratio_{p}": stats["big"][f"{p}_ms"] / stats["small"][f"{p}_ms"]
                 for p in ("p50", "p95")}
        out[name] = {**stats, **ratio, "goal_met": ratio["ratio_p50"] <= GOAL}
    return out


def main() -> int:
    args = parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-assistants-"))
    env = {"ASSISTANTS_DATA_DIR": str(tmp), "ASSISTANTS_LOG_LEVEL": "warning"}
    schema = None
    if args.database_url:
        schema = f"bench_{os.getpid()}_{rng.randrange(16**6):06x}"
        env |= {"ASSISTANTS_DATABASE_URL": args.database_url,
                "ASSISTANTS_DATABASE_SCHEMA": schema}
    settings = Settings(data_dir=tmp, database_url=args.database_url, database_schema=schema)
    database = "postgresql" if not settings.is_sqlite else "sqlite"
    proc: subprocess.Popen[bytes] | None = None
    try:
        upgrade_to_head(settings)
        t0 = time.perf_counter()
        (small, *small_ids), (big, *big_ids) = asyncio.run(
            seed(settings, [args.small, args.messages], args.ties, rng))
        print(f"{database}: seeded {args.small} + {args.messages} messages in "
              f"{time.perf_counter() - t0:.1f} s")
        port = free_port()
        try:
            proc = start([sys.executable, "-m", "assistants_server", "serve", "--port",
                          str(port)], env, tmp / "server.log", f"http://127.0.0.1:{port}/health")
        except BenchError as exc:
            raise SystemExit(str(exc)) from None
        # `after` cursor: the middle of the big thread; in the small one the newest message, the
        # deepest cursor after which a page is still (nearly) full: 9 messages.
        by_thread = {small: small_ids[-1], big: big_ids[len(big_ids) - 1 - len(big_ids) // 2]}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=HEADERS,
                          timeout=30) as client:
            lim = args.limit
            path = "/v1/threads/{}/messages"
            scenarios: dict[str, Callable[[str], httpx.Request]] = {
                "list desc": lambda t: client.build_request(
                    "GET", path.format(t), params={"limit": lim}),
                "list after=<middle>": lambda t: client.build_request(
                    "GET", path.format(t), params={"limit": lim, "after": by_thread[t]}),
                "list asc": lambda t: client.build_request(
                    "GET", path.format(t), params={"limit": lim, "order": "asc"}),
                # Last: it grows both threads by warmup + samples messages.
                "create": lambda t: client.build_request(
                    "POST", path.format(t), json={"role": "user", "content": "benchmark"}),
            }
            results = run(client, scenarios, {"small": small, "big": big},
                          args.warmup, args.samples)
    finally:
        stop(proc)
        if schema and args.database_url:
            asyncio.run(drop_schema(args.database_url, schema))
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{database}, limit={args.limit}, {args.samples} samples each, "
          f"{args.small} vs {args.messages:,} messages, {args.ties or 'all'} per created_at "
          "second (ms):")
    head = (f"{'scenario':<22}{'items':>7}{'small p50':>11}{'p95':>8}{'big p50':>10}{'p95':>8}"
            f"{'ratio p50':>11}{'p95':>7}  goal<={GOAL}")
    print(head + "\n" + "-" * len(head))
    for name, r in results.items():
        s, b = r["small"], r["big"]
        counts = f"{s['items']}/{b['items']}"
        print(f"{name:<22}{counts:>7}{s['p50_ms']:>11.2f}{s['p95_ms']:>8.2f}"
              f"{b['p50_ms']:>10.2f}{b['p95_ms']:>8.2f}{r['ratio_p50']:>11.2f}"
              f"{r['ratio_p95']:>7.2f}  {'met' if r['goal_met'] else 'MISSED'}")
    missed = [name for name, r in results.items() if not r["goal_met"]]
    print("\nratio goal (p50 big/small <= 1.2): "
          + ("met by every scenario" if not missed else "MISSED by " + ", ".join(missed)))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"list_and_create-{database}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({
        "database": database, "machine": machine(), "args": vars(args) | {"database_url": (
            args.database_url and args.database_url.split("@")[-1])},
        "goal_ratio_p50": GOAL, "results": results}, indent=2))
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
