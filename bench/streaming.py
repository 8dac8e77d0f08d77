"""Streaming runs: time to first delta, deltas relayed per second per core, memory per stream.

Starts the fake backend (tests/fake_backend.py, configured per scenario) and `assistants-server
serve` as subprocesses on free loopback ports (SQLite in a temp dir, or PostgreSQL in a throwaway
schema with --database-url), and measures, each against a baseline taken in the same run:

1. first delta: one request at a time, the time from `POST /v1/threads/{id}/runs` with
   `stream: true` to the first `thread.message.delta` frame, against the time from
   `POST /v1/chat/completions` on the backend itself to its first content chunk; the two paths
   alternate. Goal: the server adds <= 5 ms at p50.
2. relay rate: streams whose answer arrives as thousands of one-character chunks, read to the end
   as raw SSE; the server's own CPU time (from /proc) divides the deltas it relayed. Goal:
   >= 20,000 delta events per second per core. Baseline: the same chunks read from the backend
   directly, per second of the reading client's wall time.
3. memory: --streams streams held open at once (the backend pauses after its first chunk), the
   server's RSS then, against its RSS before they opened. Goal: < 300 MB.

Prints a table, writes JSON to bench/results/, exits 0.

    .venv/bin/python bench/streaming.py [--database-url URL] [--streams 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
    pct,
    start,
    stop,
)

GOAL_FIRST_DELTA_MS, GOAL_DELTAS_PER_CORE_S, GOAL_RSS_MB = 5.0, 20_000.0, 300.0
BACKEND = ("import uvicorn; uvicorn.run('tests.fake_backend:create_configured_backend', "
           "factory=True, host='127.0.0.1', port={port}, log_level='warning', access_log=False)")
MESSAGES = [{"role": "user", "content": "Say hello."}]
CHAT_BODY = {"model": "fake", "stream": True, "stream_options": {"include_usage": True},
             "messages": MESSAGES}


def parse_args() -> argparse.Namespace:
    p = argument_parser(__doc__)
    p.add_argument("--samples", type=int, default=200, help="timed first-delta samples per path")
    p.add_argument("--warmup", type=int, default=20, help="untimed first-delta samples per path")
    p.add_argument("--relay-chars", type=int, default=20_000,
                   help="one-character chunks per relay-rate stream")
    p.add_argument("--relay-streams", type=int, default=4, help="relay-rate streams at once")
    p.add_argument("--streams", type=int, default=1000, help="streams held open for memory")
    return p.parse_args()


class Server:
    """The fake backend and the server, started for one scenario with its own settings."""

    def __init__(self, tmp: Path, args: argparse.Namespace, backend_env: dict[str, str],
                 server_env: dict[str, str]) -> None:
        self.tmp, self.args = tmp, args
        self.backend_env, self.server_env = backend_env, server_env
        self.schema = f"bench_stream_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
        self.backend_url = f"http://127.0.0.1:{free_port()}"
        self.api_url = f"http://127.0.0.1:{free_port()}"

    def __enter__(self) -> Server:
        data = self.tmp / self.schema
        data.mkdir()
        env = {"ASSISTANTS_DATA_DIR": str(data), "ASSISTANTS_LOG_LEVEL": "warning",
               "ASSISTANTS_BACKEND_BASE_URL": self.backend_url + "/v1", **self.server_env}
        if self.args.database_url:
            env |= {"ASSISTANTS_DATABASE_URL": self.args.database_url,
                    "ASSISTANTS_DATABASE_SCHEMA": self.schema}
        port = self.backend_url.rsplit(":", 1)[1]
        self.backend = start([sys.executable, "-c", BACKEND.format(port=port)], self.backend_env,
                             data / "backend.log", self.backend_url + "/v1/models")
        try:
            self.server = start([sys.executable, "-m", "assistants_server", "serve", "--port",
                                 self.api_url.rsplit(":", 1)[1]], env, data / "server.log",
                                self.api_url + "/health")
        except BaseException:
            stop(self.backend)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.server)
        stop(self.backend)
        if self.args.database_url:
            asyncio.run(drop_schema(self.args.database_url, self.schema))

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.server.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise BenchError("no VmRSS")


async def setup(api: httpx.AsyncClient, threads: int) -> tuple[str, list[str]]:
    assistant = str(checked(await api.post("/v1/assistants", json={"model": "fake"}))["id"])
    ids = []
    for _ in range(threads):
        ids.append(str(checked(await api.post("/v1/threads", json={"messages": MESSAGES}))["id"]))
    return assistant, ids


async def stream_run(api: httpx.AsyncClient, thread: str, assistant: str,
                     until: str | None = None, relay: list[float] | None = None,
                     ) -> tuple[float, int, str]:
    """(seconds to the first message delta, deltas, last event) of a streamed run; stops
    reading at the first `until` event when given. With `relay`, the backend stamps its first
    chunk with the time it sent it, and the seconds until it arrived here are appended."""
    t0 = time.perf_counter()
    first, deltas, last = 0.0, 0, ""
    async with api.stream("POST", f"/v1/threads/{thread}/runs",
                          json={"assistant_id": assistant, "stream": True}) as response:
        if response.status_code != 200:
            raise BenchError(f"stream: HTTP {response.status_code} {await response.aread()!r}")
        lines = response.aiter_lines()
        async for line in lines:
            if not line.startswith("event: ") or line == "event: done":
                continue
            last = line[7:]
            if last == "thread.message.delta":
                deltas += 1
                if deltas == 1:
                    first = time.perf_counter() - t0
                    if relay is not None:
                        data = await anext(lines)
                        sent = float(json.loads(data[6:])["delta"]["content"][0]["text"]["value"])
                        relay.append(time.time() - sent)
            if last == until:
                break
    return first, deltas, last


async def direct_first_chunk(backend: httpx.AsyncClient) -> tuple[float, int]:
    """(seconds to the first content chunk, content chunks) of the backend called directly."""
    t0 = time.perf_counter()
    first, chunks = 0.0, 0
    async with backend.stream("POST", "/v1/chat/completions", json=CHAT_BODY) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: {") and '"content": "' in line and \
                    '"content": ""' not in line:
                chunks += 1
                if chunks == 1:
                    first = time.perf_counter() - t0
    return first, chunks


async def first_delta(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.api_url, headers=HEADERS, timeout=60) as api, \
            httpx.AsyncClient(base_url=server.backend_url, timeout=60) as backend:
        assistant, threads = await setup(api, args.warmup + args.samples)
        direct, served, relay = [], [], []
        for i, thread in enumerate(threads):
            if i % 2:  # alternate which path goes first
                d = await direct_first_chunk(backend)
                s = await stream_run(api, thread, assistant, relay=relay)
            else:
                s = await stream_run(api, thread, assistant, relay=relay)
                d = await direct_first_chunk(backend)
            if s[2] != "thread.run.completed":
                raise BenchError(f"a stream ended with {s[2]}")
            if i >= args.warmup:
                direct.append(d[0] * 1000)
                served.append(s[0] * 1000)
    relay = [r * 1000 for r in relay[args.warmup:]]
    added = pct(served, 50) - pct(direct, 50)
    return {"backend_first_chunk_ms": {"p50": pct(direct, 50), "p95": pct(direct, 95)},
            "server_first_delta_ms": {"p50": pct(served, 50), "p95": pct(served, 95)},
            "added_p50_ms": added, "samples": len(served),
            "first_token_relay_ms": {"p50": pct(relay, 50), "p95": pct(relay, 95)},
            "goal_met": added <= GOAL_FIRST_DELTA_MS}


async def relay_rate(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.api_url, headers=HEADERS, timeout=300) as api, \
            httpx.AsyncClient(base_url=server.backend_url, timeout=300) as backend:
        assistant, threads = await setup(api, 2 * args.relay_streams)
        t0 = time.perf_counter()
        direct = await asyncio.gather(*(direct_first_chunk(backend)
                                        for _ in range(args.relay_streams)))
        direct_s = time.perf_counter() - t0
        await asyncio.gather(*(stream_run(api, t, assistant)  # warm-up
                               for t in threads[args.relay_streams:]))
        cpu0, t0 = server.cpu_seconds(), time.perf_counter()
        runs = await asyncio.gather(*(stream_run(api, t, assistant)
                                      for t in threads[:args.relay_streams]))
        wall, cpu = time.perf_counter() - t0, server.cpu_seconds() - cpu0
    deltas = sum(r[1] for r in runs)
    if {r[2] for r in runs} != {"thread.run.completed"} or deltas != sum(d[1] for d in direct):
        raise BenchError(f"relay: {deltas} deltas for {sum(d[1] for d in direct)} chunks, "
                         f"ends {[r[2] for r in runs]}")
    per_core = deltas / cpu
    return {"streams": args.relay_streams, "deltas": deltas, "wall_s": wall,
            "server_cpu_s": cpu, "deltas_per_core_s": per_core, "deltas_per_wall_s": deltas / wall,
            "backend_chunks_per_wall_s": sum(d[1] for d in direct) / direct_s,
            "goal_met": per_core >= GOAL_DELTAS_PER_CORE_S}


async def memory(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=args.streams + 10)
    async with httpx.AsyncClient(base_url=server.api_url, headers=HEADERS, timeout=120,
                                 limits=limits) as api:
        assistant, threads = await setup(api, args.streams)
        await asyncio.sleep(1.0)
        before = server.rss_mb()
        opened = [asyncio.create_task(stream_run(api, t, assistant, "thread.message.delta"))
                  for t in threads]
        # Every stream is open and has seen its first delta; the backend holds the rest.
        results = await asyncio.gather(*opened)
        peak = server.rss_mb()
    if any(r[2] != "thread.message.delta" for r in results):
        raise BenchError("not every stream reached its first delta")
    growth = peak - before
    return {"streams": args.streams, "rss_before_mb": before, "rss_open_mb": peak,
            "per_stream_kb": growth * 1024 / args.streams,
            "goal_met": peak < GOAL_RSS_MB}


def report(database: str, r: dict[str, Any]) -> None:
    f, relay, mem = r["first_delta"], r["relay"], r["memory"]
    yes = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    print(f"\n{database}: first delta, {f['samples']} samples, one request at a time")
    print(f"  backend's own first chunk  p50 {f['backend_first_chunk_ms']['p50']:.2f} ms, "
          f"p95 {f['backend_first_chunk_ms']['p95']:.2f} ms")
    print(f"  server's first delta       p50 {f['server_first_delta_ms']['p50']:.2f} ms, "
          f"p95 {f['server_first_delta_ms']['p95']:.2f} ms")
    print(f"  added p50 {f['added_p50_ms']:.2f} ms -> goal <= {GOAL_FIRST_DELTA_MS:g} ms: "
          f"{yes(f['goal_met'])}")
    r = f["first_token_relay_ms"]
    print(f"  of which relaying the first token, from the backend sending it to the client "
          f"reading its delta: p50 {r['p50']:.2f} ms, p95 {r['p95']:.2f} ms")
    print(f"\n{database}: relay, {relay['streams']} streams, {relay['deltas']} deltas")
    print(f"  {relay['deltas_per_core_s']:,.0f} deltas per server CPU-second "
          f"({relay['server_cpu_s']:.2f} s CPU, {relay['wall_s']:.2f} s wall, "
          f"{relay['deltas_per_wall_s']:,.0f}/s wall; backend read directly: "
          f"{relay['backend_chunks_per_wall_s']:,.0f} chunks/s) -> goal >= "
          f"{GOAL_DELTAS_PER_CORE_S:,.0f}: {yes(relay['goal_met'])}")
    print(f"\n{database}: memory, {mem['streams']} open streams")
    print(f"  RSS {mem['rss_before_mb']:.0f} MB before, {mem['rss_open_mb']:.0f} MB open "
          f"({mem['per_stream_kb']:.0f} KB per stream) -> goal < {GOAL_RSS_MB:g} MB: "
          f"{yes(mem['goal_met'])}")


def main() -> int:
    args = parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.streams)), hard))
    tmp = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    database = "postgresql" if args.database_url else "sqlite"
    host = machine()
    results: dict[str, Any] = {}
    try:
        with Server(tmp, args, {"FAKE_STAMP": "1"}, {}) as server:
            results["first_delta"] = asyncio.run(first_delta(server, args))
        with Server(tmp, args, {"FAKE_REPLY_CHARS": str(args.relay_chars),
                                "FAKE_CHUNK_CHARS": "1"}, {}) as server:
            results["relay"] = asyncio.run(relay_rate(server, args))
        with Server(tmp, args, {"FAKE_HANG_SECONDS": "30"},
                    {"ASSISTANTS_EXECUTOR_CONCURRENCY": str(args.streams),
                     "ASSISTANTS_DATABASE_POOL_SIZE": "20"}) as server:
            results["memory"] = asyncio.run(memory(server, args))
    except (BenchError, httpx.HTTPError) as exc:
        logs = "".join(f"\n--- {p}\n{p.read_text()[-3000:]}" for p in tmp.rglob("*.log"))
        print(f"benchmark aborted: {exc!r}{logs}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(database, results)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"streaming-{database}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({
        "database": database, "machine": host,
        "args": vars(args) | {"database_url": args.database_url and
                              args.database_url.split("@")[-1]},
        "goals": {"first_delta_added_p50_ms": GOAL_FIRST_DELTA_MS,
                  "deltas_per_core_s": GOAL_DELTAS_PER_CORE_S, "rss_mb": GOAL_RSS_MB},
        **results}, indent=2))
    print(f"\nresults written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
