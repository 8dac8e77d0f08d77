"""What checking a project's API key costs a request: a keyless server against one whose clients
send a stored `sk-proj-...` key, measured in the same run.

Starts `assistants-server serve` three times on SQLite (one temp directory each): keyless (the
embedded default), with a project key made by `assistants-server keys create` (default key
cache, ASSISTANTS_KEY_CACHE_SECONDS=1), and the same with the cache off (every request reads the
key and its project: the cost when the cache is cold). Each gets an assistant; then rounds of
--requests sequential `GET /v1/assistants/{id}` on one kept-alive connection go to each server
in turn, so that drift of the machine falls on all three alike. Goal: the project key's p50
within 0.3 ms of the keyless p50.

Prints a table, writes JSON to bench/results/, exits 0.

    .venv/bin/python bench/keys.py [--rounds 10] [--requests 300]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import (
    HEADERS,
    RESULTS,
    LeanClient,
    argument_parser,
    checked,
    free_port,
    machine,
    pct,
    start,
    stop,
)

GOAL_MS = 0.3
EXE = str(Path(sys.executable).with_name("assistants-server"))


def _project_key(data_dir: Path) -> str:
    env = {**os.environ, "ASSISTANTS_DATA_DIR": str(data_dir)}
    made = subprocess.run([EXE, "projects", "create", "bench"], env=env, check=True,
                          capture_output=True, text=True).stdout
    project_id = made.split()[2]
    key = subprocess.run([EXE, "keys", "create", "--project", project_id], env=env, check=True,
                         capture_output=True, text=True).stdout
    return key.strip().splitlines()[-1]


def _serve(name: str, root: Path, env: dict[str, str]) -> tuple[Any, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start([EXE, "serve", "--port", str(port)],
                 {"ASSISTANTS_DATA_DIR": str(root / name), "ASSISTANTS_MODELS": "gpt-4o", **env},
                 root / f"{name}.log", url + "/health")
    return proc, url


async def _timed(url: str, headers: dict[str, str], path: str, count: int) -> list[float]:
    async with LeanClient(url, headers) as client:
        await client.get(path)  # warm: the connection, and the key's cache entry
        times = []
        for _ in range(count):
            started = time.perf_counter()
            checked(await client.get(path))
            times.append((time.perf_counter() - started) * 1000)
    return times


async def measure(rounds: int, requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "keyed").mkdir()
        key = _project_key(root / "keyed")
        (root / "cold").mkdir()
        cold_key = _project_key(root / "cold")
        servers = {"keyless": ({}, "bench"), "project key": ({}, key),
                   "project key, no cache": ({"ASSISTANTS_KEY_CACHE_SECONDS": "0"}, cold_key)}
        names = {"keyless": "keyless", "project key": "keyed", "project key, no cache": "cold"}
        running = {label: _serve(names[label], root, env)
                   for label, (env, _) in servers.items()}
        try:
            paths = {}
            for label, (_, url) in running.items():
                headers = {**HEADERS, "Authorization": f"Bearer {servers[label][1]}"}
                async with LeanClient(url, headers) as client:
                    made = checked(await client.post("/v1/assistants", json={"model": "gpt-4o"}))
                paths[label] = (headers, f"/v1/assistants/{made['id']}")
            times: dict[str, list[float]] = {label: [] for label in running}
            for _ in range(rounds):
                for label, (_, url) in running.items():
                    headers, path = paths[label]
                    times[label] += await _timed(url, headers, path, requests)
        finally:
            for proc, _ in running.values():
                stop(proc)
    return {label: {"p50_ms": statistics.median(t), "p99_ms": pct(t, 99), "requests": len(t)}
            for label, t in times.items()}


def main() -> None:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.rounds, args.requests))
    base = figures["keyless"]["p50_ms"]
    added = figures["project key"]["p50_ms"] - base
    print(f"{'server':<24}{'p50 ms':>10}{'p99 ms':>10}{'p50 vs keyless':>18}")
    for label, f in figures.items():
        print(f"{label:<24}{f['p50_ms']:>10.3f}{f['p99_ms']:>10.3f}"
              f"{f['p50_ms'] - base:>+15.3f} ms")
    met = added <= GOAL_MS
    print(f"\nproject key adds {added:+.3f} ms at p50 (goal <= {GOAL_MS} ms): "
          f"{'met' if met else 'NOT met'}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"keys-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"machine": machine(), "figures": figures,
                               "added_p50_ms": added, "goal_ms": GOAL_MS, "met": met}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
