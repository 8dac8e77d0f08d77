"""Completed runs per second with 1, 2 and 4 server processes on PostgreSQL + Redis, against a
model that answers at a real model's pace (bench/paced_backend.py: first token after
--first-token-ms, 300 by default, then --answer-tokens at 50 tokens/s), so that processes wait on
I/O as in production.

For each process count N: a fresh PostgreSQL schema and Redis prefix, `assistants-server serve`
with ASSISTANTS_WORKERS=N (N processes on one port, each answering the API and driving runs), and
--clients-per-process x N clients (harness.LeanClient, one kept-alive connection each) looping
on `POST /v1/threads/runs` and polling like the SDK (bench/runs.py's clients), for --seconds
after a warm-up. The figure is the speed-up over one process, against the goal of 0.9 x linear
up to the cores the machine has; the cores each party kept busy are reported, because here the
clients, the model, PostgreSQL and the server share those cores.

    .venv/bin/python bench/scale_out.py [--database-url URL] [--processes 1,2,4] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
from harness import (
    HEADERS,
    RESULTS,
    BenchError,
    LeanClient,
    argument_parser,
    checked,
    drop_schema,
    free_port,
    machine,
    start,
    stop,
)

from runs import busy_cpus, throughput

DEFAULT_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
GOAL_EFFICIENCY = 0.9


def parse_args() -> argparse.Namespace:
    p = argument_parser(__doc__)
    p.set_defaults(database_url=DEFAULT_DATABASE)
    p.add_argument("--processes", default="1,2,4", help="process counts to measure")
    p.add_argument("--clients-per-process", type=int, default=60)
    p.add_argument("--seconds", type=float, default=15.0, help="throughput window")
    p.add_argument("--warmup-seconds", type=float, default=3.0)
    p.add_argument("--first-token-ms", type=int, default=300)
    p.add_argument("--answer-tokens", type=int, default=10)
    p.add_argument("--poll-ms", type=int, default=200)
    return p.parse_args()


async def measure(api_url: str, args: argparse.Namespace, clients: int,
                  pids: dict[str, int]) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        connected = [await stack.enter_async_context(LeanClient(api_url, HEADERS))
                     for _ in range(clients)]
        assistant = str(checked(await connected[0].post(
            "/v1/assistants", json={"model": "bench-model"}))["id"])
        options = argparse.Namespace(warmup_seconds=args.warmup_seconds, seconds=args.seconds,
                                     two_step=False, poll_ms=args.poll_ms)
        return await throughput(connected, assistant, options, pids)


def one(n: int, args: argparse.Namespace, backend_url: str, tmp: Path) -> dict[str, Any]:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
    env = {"ASSISTANTS_DATA_DIR": str(tmp / f"data-{n}"), "ASSISTANTS_LOG_LEVEL": "warning",
           "ASSISTANTS_BACKEND_BASE_URL": backend_url + "/v1",
           "ASSISTANTS_POLL_AFTER_MS": str(args.poll_ms), "ASSISTANTS_WORKERS": str(n),
           "ASSISTANTS_DATABASE_URL": args.database_url, "ASSISTANTS_DATABASE_SCHEMA": schema,
           # processes x pool must stay under PostgreSQL's max_connections (100 by default)
           "ASSISTANTS_DATABASE_POOL_SIZE": str(max(5, 80 // n)),
           "ASSISTANTS_REDIS_URL": REDIS, "ASSISTANTS_REDIS_PREFIX": schema}
    server = start([sys.executable, "-m", "assistants_server", "serve", "--port", str(port)],
                   env, tmp / f"server-{n}.log", api_url + "/ready")
    try:
        time.sleep(2.0 + n)  # every process serving, not just the first
        pids = {"server": server.pid, "clients": os.getpid()}
        result = asyncio.run(measure(api_url, args, args.clients_per_process * n, pids))
    finally:
        stop(server)
        asyncio.run(drop_schema(args.database_url, schema))
    return {"processes": n} | result


def report(rows: list[dict[str, Any]], cores: int) -> None:
    base = rows[0]["runs_per_s"] or 1.0
    print(f"\nruns/s by server processes, PostgreSQL + Redis, {cores} cores")
    head = (f"{'processes':>9}{'clients':>9}{'runs/s':>9}{'speed-up':>10}{'goal':>7}"
            f"{'server cores':>14}{'clients cores':>15}{'run p50 ms':>12}")
    print(head + "\n" + "-" * len(head))
    for row in rows:
        n = row["processes"]
        goal = GOAL_EFFICIENCY * min(n, cores)
        row["speed_up"] = row["runs_per_s"] / base
        row["goal_met"] = row["speed_up"] >= goal if n <= cores else None
        met = {True: "met", False: "MISSED", None: "-"}[row["goal_met"]]
        print(f"{n:>9}{row['clients']:>9}{row['runs_per_s']:>9.1f}{row['speed_up']:>10.2f}"
              f"{met:>7}{row['cores_busy']['server']:>14.2f}{row['cores_busy']['clients']:>15.2f}"
              f"{row['run_latency'].get('p50_ms', 0):>12.0f}")
        if row["errors"]:
            print(f"  errors: {row['errors']}")


def main() -> int:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    backend_port = free_port()
    backend_url = f"http://127.0.0.1:{backend_port}"
    host = machine() | {"busy_cpus_at_start": busy_cpus()}
    backend = None
    rows = []
    try:
        backend = start([sys.executable, "bench/paced_backend.py", str(backend_port),
                         "--first-token-ms", str(args.first_token_ms), "--tokens-per-s", "50",
                         "--answer-tokens", str(args.answer_tokens)], {},
                        tmp / "backend.log", backend_url + "/v1/models")
        for n in (int(value) for value in args.processes.split(",")):
            rows.append(one(n, args, backend_url, tmp))
            print(f"{n} process(es): {rows[-1]['runs_per_s']:.1f} runs/s", flush=True)
    except (BenchError, httpx.HTTPError) as exc:
        logs = "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in tmp.glob("*.log"))
        print(f"benchmark aborted: {exc!r}{logs}")
        return 0
    finally:
        stop(backend)
        shutil.rmtree(tmp, ignore_errors=True)
    cores = os.cpu_count() or 1
    report(rows, cores)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"scale-out-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"machine": host, "args": vars(args) | {
        "database_url": args.database_url.split("@")[-1]}, "rows": rows}, indent=2))
    print(f"\nresults written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
