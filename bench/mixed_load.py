"""Tail latency under mixed load, for a baseline and a candidate source tree in the same run.

For each tree (default: baseline /work/base, candidate this checkout, each served by its own
virtualenv's `assistants-server serve` on a free loopback port, with a fresh SQLite database in
a temp dir or, with --database postgres, a PostgreSQL database created and dropped around the
run), against the paced fake model (bench/paced_backend.py, in its own process: the first token
~300 ms after the request, then 30 tokens/s, 40 tokens; each token carries the time it was
written):

1. prepare: an assistant; a vector store pre-filled with --prefill-chunks chunks (generated
   text in files of --prefill-file-mb, the default chunking of 800/400 tokens; the count is
   read back from the database); an empty store for the ingestion; a short warm-up;
2. idle pass, each load alone: --idle-runs streamed runs, --idle-concurrency at a time; GETs at
   --get-rate for --idle-seconds; vector-store searches back to back for --idle-seconds;
3. loaded pass, all at once: --runs streamed runs (`POST /v1/threads/runs` with stream=true,
   raw SSE over httpx), --concurrency at a time; a --ingest-mb text file uploaded and attached
   to the empty store; searches of the pre-filled store (POST /v1/vector_stores/{id}/search),
   back to back; `GET /v1/assistants/{id}` at --get-rate (open loop: each GET is sent at its
   time, whether or not the previous one answered). GETs and searches go on until the runs and
   the ingestion have ended.

Each kind of client runs in its own process, so that their timing does not wait on each other.
For every text delta, the gap is the time the client read the `thread.message.delta` frame less
the time the backend wrote that token; the gap is the server's relay of the token (backend to
client, both on this machine's clock). "Added" is the loaded pass's p99 less the idle pass's.
Goals: added p99 <= 20 ms for deltas, <= 50 ms for GETs. Prints markdown tables, writes JSON to
--out (default bench/results/mixed_load-<database>-<time>.json), exits 0.

    .venv/bin/python bench/mixed_load.py [--database sqlite|postgres] [--trees baseline,candidate]
        [--scale 0.5] [--rounds 1] [--out results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import queue as queues
import random
import re
import resource
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import HEADERS, RESULTS, BenchError, checked, cpu_seconds, machine, pct, stop  # noqa: E402
from ingest import WORDS, document  # noqa: E402
from trees import (  # noqa: E402
    Database,
    Tree,
    add_tree_arguments,
    start_backend,
    start_server,
    trees_from,
)

GOAL_DELTA_ADDED_P99_MS, GOAL_GET_ADDED_P99_MS = 20.0, 50.0
STAMP = re.compile(rb"@(\d{10}\.\d{6})")
EVENT = re.compile(rb"^event: (\S+)", re.MULTILINE)
CONTENT_WORDS = WORDS[WORDS.index("revenue"):] + ["time", "new", "customer", "report"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_tree_arguments(p, "baseline,candidate")
    p.add_argument("--runs", type=int, default=200, help="streamed runs in the loaded pass")
    p.add_argument("--concurrency", type=int, default=50, help="runs at once, loaded pass")
    p.add_argument("--idle-runs", type=int, default=12, help="streamed runs in the idle pass")
    p.add_argument("--idle-concurrency", type=int, default=3, help="runs at once, idle pass")
    p.add_argument("--idle-seconds", type=float, default=6.0,
                   help="idle pass: GETs alone, then searches alone, this long each")
    p.add_argument("--get-rate", type=float, default=50.0, help="GETs per second")
    p.add_argument("--search-concurrency", type=int, default=1, help="searches at once")
    p.add_argument("--ingest-mb", type=float, default=10.0, help="file ingested under load")
    p.add_argument("--prefill-chunks", type=int, default=10_000,
                   help="chunks in the searched store")
    p.add_argument("--prefill-file-mb", type=float, default=4.0,
                   help="size of each file filling the searched store")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiplies --runs, --idle-runs, --prefill-chunks and --ingest-mb "
                   "(e.g. 0.5 for a quicker pass)")
    p.add_argument("--first-token-ms", type=float, default=300.0)
    p.add_argument("--tokens-per-s", type=float, default=30.0)
    p.add_argument("--answer-tokens", type=int, default=40)
    p.add_argument("--workers", type=int, default=1, help="ASSISTANTS_WORKERS of each server")
    p.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting of each server (repeatable), e.g. "
                   "ASSISTANTS_GC_YOUNG_THRESHOLD=50000")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure the trees this many times, alternating their order")
    p.add_argument("--start-attempts", type=int, default=3,
                   help="tries to start a server (a tree being edited may not start)")
    p.add_argument("--retry-seconds", type=float, default=120.0)
    p.add_argument("--out", type=Path, help="JSON results (default bench/results/...)")
    p.add_argument("--keep-samples", action="store_true",
                   help="write every sample (ms) to the JSON too, not only percentiles")
    args = p.parse_args()
    args.runs = max(1, round(args.runs * args.scale))
    args.idle_runs = max(1, round(args.idle_runs * args.scale))
    args.prefill_chunks = max(1, round(args.prefill_chunks * args.scale))
    args.ingest_mb = args.ingest_mb * args.scale
    return args


# --- The clients, each kind in its own process ----------------------------------------------

def _client(url: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=300, limits=limits)


async def streams(p: dict[str, Any], stop_event: Any) -> dict[str, Any]:
    """p["runs"] streamed runs, p["concurrency"] at a time, each on a new thread; the gap of
    every token the backend stamped, and the time to each run's first delta."""
    by_run: list[list[float]] = []  # each run's gaps in token order
    first: list[float] = []
    ends: Counter[str] = Counter()
    errors: list[str] = []
    tokens = 0
    pending = iter(range(p["runs"]))

    async def one(api: httpx.AsyncClient, index: int) -> None:
        nonlocal tokens
        body = {"assistant_id": p["assistant"], "stream": True, "thread": {"messages": [
            {"role": "user", "content": f"Question {index}: tell me about the weather."}]}}
        began, seen, last, buffer = time.time(), False, "none", b""
        mine: list[float] = []
        by_run.append(mine)
        async with api.stream("POST", "/v1/threads/runs", json=body) as response:
            if response.status_code != 200:
                errors.append(f"HTTP {response.status_code} {(await response.aread())[:200]!r}")
                return
            async for data in response.aiter_raw():
                now = time.time()
                *frames, buffer = (buffer + data).split(b"\n\n")
                for frame in frames:
                    event = EVENT.search(frame)
                    name = event.group(1).decode() if event else ""
                    if name == "thread.message.delta":
                        stamps = STAMP.findall(frame)
                        tokens += len(stamps)
                        mine.extend((now - float(s)) * 1000 for s in stamps)
                        if not seen:
                            seen = True
                            first.append((now - began) * 1000)
                    elif name.startswith("thread.run."):
                        last = name[len("thread.run."):]
        ends[last] += 1

    async def client_loop(api: httpx.AsyncClient) -> None:
        for index in pending:
            try:
                await one(api, index)
            except httpx.HTTPError as exc:
                errors.append(repr(exc))

    began = time.perf_counter()
    async with _client(p["url"], p["concurrency"] + 2) as api:
        await asyncio.gather(*(client_loop(api) for _ in range(p["concurrency"])))
    gaps = [gap for run in by_run for gap in run]
    return {"gaps_ms": gaps, "gaps_by_run_ms": by_run, "first_delta_ms": first,
            "ends": dict(ends),
            "completed": ends.get("completed", 0), "tokens": tokens, "errors": errors[:20],
            "error_count": len(errors), "wall_s": time.perf_counter() - began}


async def gets(p: dict[str, Any], stop_event: Any) -> dict[str, Any]:
    """GET p["path"] at p["rate"] per second until told to stop; each one sent at its time."""
    times: list[float] = []
    errors: list[str] = []
    loop = asyncio.get_running_loop()

    async def one(api: httpx.AsyncClient) -> None:
        began = time.perf_counter()
        try:
            response = await api.get(p["path"])
            if response.status_code != 200:
                errors.append(f"HTTP {response.status_code}")
                return
        except httpx.HTTPError as exc:
            errors.append(repr(exc))
            return
        times.append((time.perf_counter() - began) * 1000)

    tasks: set[asyncio.Task[None]] = set()
    async with _client(p["url"], 64) as api:
        start, sent = loop.time(), 0
        while not stop_event.is_set():
            delay = start + sent / p["rate"] - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(api))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.gather(*tasks)
    return {"times_ms": times, "errors": errors[:20], "error_count": len(errors)}


async def searches(p: dict[str, Any], stop_event: Any) -> dict[str, Any]:
    """Searches of p["store"] back to back (p["concurrency"] at a time) until told to stop."""
    times: list[float] = []
    hits: list[int] = []
    errors: list[str] = []
    rng = random.Random(p["seed"])

    async def loop_(api: httpx.AsyncClient) -> None:
        while not stop_event.is_set():
            query = " ".join(rng.sample(CONTENT_WORDS, rng.randint(2, 4)))
            began = time.perf_counter()
            try:
                response = await api.post(f"/v1/vector_stores/{p['store']}/search",
                                          json={"query": query, "max_num_results": 10})
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
                continue
            if response.status_code != 200:
                errors.append(f"HTTP {response.status_code} {response.text[:200]}")
                await asyncio.sleep(0.1)
                continue
            times.append((time.perf_counter() - began) * 1000)
            hits.append(len(response.json()["data"]))

    async with _client(p["url"], p["concurrency"] + 1) as api:
        await asyncio.gather(*(loop_(api) for _ in range(p["concurrency"])))
    return {"times_ms": times, "mean_hits": sum(hits) / len(hits) if hits else 0.0,
            "errors": errors[:20], "error_count": len(errors)}


async def ingestion(p: dict[str, Any], stop_event: Any) -> dict[str, Any]:
    """Upload p["file"] and attach it to p["store"]; poll until it is indexed."""
    data = await asyncio.to_thread(Path(p["file"]).read_bytes)
    async with _client(p["url"], 2) as api:
        began = time.perf_counter()
        file = checked(await api.post("/v1/files", data={"purpose": "assistants"},
                                      files={"file": ("load.txt", data, "text/plain")}))
        uploaded = time.perf_counter()
        checked(await api.post(f"/v1/vector_stores/{p['store']}/files",
                               json={"file_id": file["id"]}))
        while True:
            shown = checked(await api.get(f"/v1/vector_stores/{p['store']}/files/{file['id']}"))
            if shown["status"] != "in_progress":
                break
            await asyncio.sleep(0.1)
        done = time.perf_counter()
    return {"bytes": len(data), "upload_s": uploaded - began, "ingest_s": done - uploaded,
            "status": shown["status"], "last_error": shown.get("last_error")}


ROLES = {"streams": streams, "gets": gets, "searches": searches, "ingest": ingestion}


def _worker(role: str, params: dict[str, Any], go: Any, stop_event: Any, out: Any) -> None:
    try:
        import uvloop

        out.put(("ready", role, None))
        go.wait()
        before = resource.getrusage(resource.RUSAGE_SELF)
        result = uvloop.run(ROLES[role](params, stop_event))
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        out.put(("result", role, result | {"client_cpu_s": cpu}))
    except BaseException:
        out.put(("error", role, traceback.format_exc()))


def run_roles(roles: dict[str, dict[str, Any]], finishing: set[str], seconds: float = 0.0,
              timeout: float = 900.0) -> tuple[dict[str, Any], float]:
    """Start one process per role, let them go at once, wait for the `finishing` roles (and at
    least `seconds`), then tell the others to stop; (results by role, wall seconds)."""
    ctx = mp.get_context("spawn")
    out, go, stop_event = ctx.Queue(), ctx.Event(), ctx.Event()
    procs = [ctx.Process(target=_worker, args=(role, params, go, stop_event, out), daemon=True)
             for role, params in roles.items()]
    for proc in procs:
        proc.start()
    results: dict[str, Any] = {}
    ready: set[str] = set()

    def receive(deadline: float) -> None:
        kind, role, payload = out.get(timeout=max(0.1, deadline - time.monotonic()))
        if kind == "error":
            raise BenchError(f"client process {role} failed:\n{payload}")
        if kind == "ready":
            ready.add(role)
        else:
            results[role] = payload

    try:
        deadline = time.monotonic() + 60
        while len(ready) < len(roles):
            receive(deadline)
        began = time.monotonic()
        go.set()
        deadline = began + timeout
        while not finishing <= results.keys():
            receive(deadline)
        time.sleep(max(0.0, began + seconds - time.monotonic()))
        wall = time.monotonic() - began
        stop_event.set()
        deadline = time.monotonic() + 120
        while len(results) < len(roles):
            receive(deadline)
    except queues.Empty:
        raise BenchError(f"client processes timed out; results from {sorted(results)}") from None
    finally:
        stop_event.set()
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    return results, wall


# --- One tree: prepare, idle pass, loaded pass -----------------------------------------------

class Material:
    """What every tree is given: the pre-fill files and the file ingested under load."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        from assistants_server.retrieval.chunking import chunk_text

        probe = document(args.prefill_file_mb, seed=100)
        per_mb = len(chunk_text(probe)) / args.prefill_file_mb
        total_mb = args.prefill_chunks / per_mb
        count = max(1, math.ceil(total_mb / args.prefill_file_mb))
        self.prefill = [document(total_mb / count, seed=101 + i).encode() for i in range(count)]
        self.expected_chunks = sum(len(chunk_text(t.decode())) for t in self.prefill)
        self.ingest = tmp / "ingest.txt"
        self.ingest.write_bytes(document(args.ingest_mb, seed=7).encode())


async def prepare(url: str, material: Material, args: argparse.Namespace) -> dict[str, Any]:
    async with _client(url, 8) as api:
        assistant = checked(await api.post("/v1/assistants", json={"model": "bench-model"}))
        began = time.perf_counter()
        ids = []
        for i, data in enumerate(material.prefill):
            ids.append(checked(await api.post(
                "/v1/files", data={"purpose": "assistants"},
                files={"file": (f"prefill-{i}.txt", data, "text/plain")}))["id"])
        store = checked(await api.post("/v1/vector_stores",
                                       json={"name": "prefill", "file_ids": ids}))
        while True:
            shown = checked(await api.get(f"/v1/vector_stores/{store['id']}"))
            if shown["file_counts"]["in_progress"] == 0:
                break
            await asyncio.sleep(0.2)
        if shown["file_counts"]["completed"] != len(ids):
            raise BenchError(f"pre-fill: {shown['file_counts']}")
        prefill_s = time.perf_counter() - began
        ingest_store = checked(await api.post("/v1/vector_stores", json={"name": "ingest"}))
    return {"assistant": assistant["id"], "store": store["id"], "ingest_store": ingest_store["id"],
            "prefill_files": len(ids), "prefill_s": prefill_s}


def summary(values: list[float]) -> dict[str, float | int]:
    if len(values) < 2:
        return {"n": len(values)}
    return {"n": len(values), "p50": pct(values, 50), "p99": pct(values, 99),
            "max": max(values)}


def summarize(results: dict[str, Any], first_token_ms: float, keep: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if keep:
        out["samples"] = {
            "delta_gaps_by_run_ms": results.get("streams", {}).get("gaps_by_run_ms"),
            "first_delta_ms": results.get("streams", {}).get("first_delta_ms"),
            "gets_ms": results.get("gets", {}).get("times_ms"),
            "searches_ms": results.get("searches", {}).get("times_ms")}
    if "streams" in results:
        s = results["streams"]
        out["deltas"] = summary(s["gaps_ms"])
        out["first_delta_added"] = summary([f - first_token_ms for f in s["first_delta_ms"]])
        out["runs"] = {k: s[k] for k in ("completed", "ends", "tokens", "error_count", "errors",
                                         "wall_s", "client_cpu_s")}
    if "gets" in results:
        out["gets"] = summary(results["gets"]["times_ms"]) | {
            "errors": results["gets"]["error_count"],
            "client_cpu_s": results["gets"]["client_cpu_s"]}
    if "searches" in results:
        out["searches"] = summary(results["searches"]["times_ms"]) | {
            "errors": results["searches"]["error_count"],
            "mean_hits": results["searches"]["mean_hits"],
            "client_cpu_s": results["searches"]["client_cpu_s"]}
    if "ingest" in results:
        out["ingest"] = results["ingest"]
    return out


def measure_tree(tree: Tree, args: argparse.Namespace, material: Material, backend: str,
                 tmp: Path, label: str) -> dict[str, Any]:
    data = tmp / label
    data.mkdir()
    with Database(args.database, args.pg_admin_url, data, f"mixed_{tree.name}") as db:
        server, url = start_server(
            tree, data, {"ASSISTANTS_BACKEND_BASE_URL": backend,
                         "ASSISTANTS_WORKERS": str(args.workers), **db.env,
                         **dict(item.split("=", 1) for item in args.server_env)},
            data / "server.log", attempts=args.start_attempts, retry_seconds=args.retry_seconds)
        try:
            print(f"  {label}: server up at {url}; pre-filling the store", flush=True)
            setup = asyncio.run(prepare(url, material, args))
            setup["chunks"] = db.scalar(
                "SELECT count(*) FROM search_chunks WHERE vector_store_id = $1", setup["store"])
            base = {"url": url}
            run = base | {"assistant": setup["assistant"]}
            get = base | {"path": f"/v1/assistants/{setup['assistant']}", "rate": args.get_rate}
            search = base | {"store": setup["store"], "concurrency": args.search_concurrency}
            print(f"  {label}: {setup['chunks']} chunks in {setup['prefill_s']:.1f} s; warm-up, "
                  "idle pass", flush=True)
            run_roles({"streams": run | {"runs": 3, "concurrency": 3},
                       "searches": search | {"seed": 0}, "gets": get}, {"streams"})
            idle: dict[str, Any] = {}
            idle |= run_roles({"streams": run | {"runs": args.idle_runs,
                                                 "concurrency": args.idle_concurrency}},
                              {"streams"})[0]
            idle |= run_roles({"gets": get}, set(), args.idle_seconds)[0]
            idle |= run_roles({"searches": search | {"seed": 1}}, set(), args.idle_seconds)[0]
            print(f"  {label}: loaded pass", flush=True)
            cpu = cpu_seconds(server.pid)
            loaded, wall = run_roles(
                {"streams": run | {"runs": args.runs, "concurrency": args.concurrency},
                 "ingest": base | {"store": setup["ingest_store"], "file": str(material.ingest)},
                 "searches": search | {"seed": 2}, "gets": get},
                {"streams", "ingest"})
            cpu = cpu_seconds(server.pid) - cpu
            loaded["ingest"]["chunks"] = db.scalar(
                "SELECT count(*) FROM search_chunks WHERE vector_store_id = $1",
                setup["ingest_store"])
        except BaseException:
            print(f"  {label}: server log tail:\n{(data / 'server.log').read_text()[-3000:]}")
            raise
        finally:
            stop(server)
    result = {"tree": tree.describe(), "setup": setup,
              "idle": summarize(idle, args.first_token_ms, args.keep_samples),
              "loaded": summarize(loaded, args.first_token_ms, args.keep_samples) | {
                  "wall_s": wall, "server_cpu_s": cpu}}
    result["added_p99_ms"] = added(result)
    return result


def added(r: dict[str, Any]) -> dict[str, Any]:
    def diff(key: str) -> float | None:
        a, b = r["loaded"].get(key, {}), r["idle"].get(key, {})
        return a["p99"] - b["p99"] if "p99" in a and "p99" in b else None

    deltas, gets_ = diff("deltas"), diff("gets")
    return {"deltas": deltas, "gets": gets_, "searches": diff("searches"),
            "deltas_goal_met": deltas is not None and deltas <= GOAL_DELTA_ADDED_P99_MS,
            "gets_goal_met": gets_ is not None and gets_ <= GOAL_GET_ADDED_P99_MS}


# --- Report ------------------------------------------------------------------------------------

def _ms(s: dict[str, Any], key: str) -> str:
    return f"{s[key]:.1f}" if key in s else "-"


def report(database: str, args: argparse.Namespace, measured: list[dict[str, Any]]) -> None:
    print(f"\n### Mixed load, {database}: {args.runs} streamed runs ({args.concurrency} at once; "
          f"the model: first token {args.first_token_ms:g} ms, {args.tokens_per_s:g} tokens/s, "
          f"{args.answer_tokens} tokens), {args.ingest_mb:g} MB ingested, searches over "
          f"~{args.prefill_chunks:,} chunks, GETs at {args.get_rate:g}/s (times in ms)\n")
    print("| tree | pass | runs completed | delta gap p50 | delta gap p99 | first delta added "
          "p50 / p99 | GET p50 | GET p99 | search p50 | search p99 | searches | ingest |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in measured:
        for name in ("idle", "loaded"):
            s = r[name]
            runs = s["runs"]
            first = s["first_delta_added"]
            ingest = s.get("ingest")
            print(f"| {r['label']} (`{r['tree']['commit']}`) | {name} | "
                  f"{runs['completed']}/{sum(runs['ends'].values()) + runs['error_count']} | "
                  f"{_ms(s['deltas'], 'p50')} | {_ms(s['deltas'], 'p99')} | "
                  f"{_ms(first, 'p50')} / {_ms(first, 'p99')} | "
                  f"{_ms(s['gets'], 'p50')} | {_ms(s['gets'], 'p99')} | "
                  f"{_ms(s['searches'], 'p50')} | {_ms(s['searches'], 'p99')} | "
                  f"{s['searches']['n']} | "
                  + (f"{ingest['ingest_s']:.1f} s ({ingest['status']})" if ingest else "-")
                  + " |")
    print(f"\nAdded p99 (loaded less idle), {database}:\n")
    print(f"| tree | deltas (goal <= {GOAL_DELTA_ADDED_P99_MS:g} ms) | GETs (goal <= "
          f"{GOAL_GET_ADDED_P99_MS:g} ms) | searches | loaded pass: server CPU | "
          "clients' CPU (runs + GETs + searches) |")
    print("|---|---:|---:|---:|---:|---:|")
    def yes(ok: bool) -> str:
        return "met" if ok else "MISSED"

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:+.1f}"

    for r in measured:
        a, load = r["added_p99_ms"], r["loaded"]
        print(f"| {r['label']} | {fmt(a['deltas'])} ms, {yes(a['deltas_goal_met'])} | "
              f"{fmt(a['gets'])} ms, {yes(a['gets_goal_met'])} | {fmt(a['searches'])} ms | "
              f"{load['server_cpu_s']:.1f} s in {load['wall_s']:.1f} s | "
              f"{load['runs']['client_cpu_s']:.1f} + {load['gets']['client_cpu_s']:.1f} + "
              f"{load['searches']['client_cpu_s']:.1f} s |")


def main() -> int:
    args = parse_args()
    trees = trees_from(args)
    tmp = Path(tempfile.mkdtemp(prefix="bench-mixed-"))
    measured: list[dict[str, Any]] = []
    backend = None
    try:
        print(f"generating text: ~{args.prefill_chunks:,} chunks to pre-fill, "
              f"{args.ingest_mb:g} MB to ingest", flush=True)
        material = Material(args, tmp)
        backend, backend_url = start_backend(
            tmp / "backend.log", "--first-token-ms", str(args.first_token_ms),
            "--tokens-per-s", str(args.tokens_per_s), "--answer-tokens", str(args.answer_tokens))
        for round_ in range(args.rounds):
            order = trees if round_ % 2 == 0 else trees[::-1]
            for tree in order:
                label = tree.name if args.rounds == 1 else f"{tree.name} #{round_ + 1}"
                print(f"{label}: {tree.root} ({args.database})", flush=True)
                result = measure_tree(tree, args, material, backend_url, tmp,
                                      label.replace(" #", "-"))
                result["label"] = label
                measured.append(result)
    except (BenchError, httpx.HTTPError) as exc:
        print(f"benchmark aborted: {exc}")
        if not measured:
            return 1
    finally:
        stop(backend)
        shutil.rmtree(tmp, ignore_errors=True)
    report(args.database, args, measured)
    out = args.out or RESULTS / f"mixed_load-{args.database}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "database": args.database, "machine": machine(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "goals": {"deltas_added_p99_ms": GOAL_DELTA_ADDED_P99_MS,
                  "gets_added_p99_ms": GOAL_GET_ADDED_P99_MS},
        "expected_prefill_chunks": material.expected_chunks,
        "results": measured}, indent=2))
    print(f"\nresults written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
