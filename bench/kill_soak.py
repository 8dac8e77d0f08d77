"""kill -9 soak: a server process killed again and again mid-run, on one database, must leave
every run settled, no half-written or duplicated answer and no acknowledged write lost.

Each round starts `assistants-server serve` on the same database (with the paced fake model of
bench/paced_backend.py: first token 300 ms, 30 tokens/s, 40 tokens), creates messages (each
acknowledged 200 is remembered) and runs, half of them streamed (read until the process dies)
and half polled, waits a random moment (0.2 to 1.5 s) and SIGKILLs the process. After the last
round a server is started once more and given 30 s to settle everything. Then, from the API
and the database:

- runs unsettled after 30 s (queued, in_progress, cancelling): goal 0;
- half-written messages (an assistant message in_progress) and runs answered twice (more than
  one assistant message): goal 0;
- acknowledged messages lost: goal 0;
- runs retried (queued again after their process died: nobody streamed them) and runs failed
  with server_error (they were streamed, or retried twice already).

    .venv/bin/python bench/kill_soak.py [--database sqlite|postgres] [--kills 50] [--runs 4]

Prints a table and writes JSON to bench/results/kill_soak-<database>-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from harness import stop
from trees import BENCH, Database, Tree, start_backend, start_server

HEADERS = {"OpenAI-Beta": "assistants=v2", "Authorization": "Bearer soak"}
ACTIVE = {"queued", "in_progress", "cancelling"}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--kills", type=int, default=50)
    p.add_argument("--runs", type=int, default=4, help="runs started per round")
    p.add_argument("--seed", type=int, default=7)
    return p.parse_args()


def _stream(url: str, thread_id: str, assistant_id: str) -> None:
    """A streamed run, read until the server dies under it."""
    try:
        with httpx.stream("POST", f"{url}/v1/threads/{thread_id}/runs", headers=HEADERS,
                          json={"assistant_id": assistant_id, "stream": True},
                          timeout=30) as response:
            for _ in response.iter_lines():
                pass
    except httpx.HTTPError:
        pass


def round_(url: str, state: dict[str, Any], rng: random.Random, runs: int) -> None:
    """Messages and runs on fresh threads, then (by the caller) the kill."""
    readers = []
    with httpx.Client(base_url=url + "/v1", headers=HEADERS, timeout=10) as http:
        for i in range(runs):
            thread = http.post("/threads", json={}).json()
            message = http.post(f"/threads/{thread['id']}/messages", json={
                "role": "user", "content": f"question {len(state['acknowledged'])}"})
            if message.status_code == 200:
                state["acknowledged"].append((thread["id"], message.json()["id"]))
            state["threads"].append(thread["id"])
            if i % 2:
                readers.append(threading.Thread(
                    target=_stream, args=(url, thread["id"], state["assistant"]), daemon=True))
                readers[-1].start()
            else:
                http.post(f"/threads/{thread['id']}/runs",
                          json={"assistant_id": state["assistant"]})
    time.sleep(rng.uniform(0.2, 1.5))


def settle(url: str, state: dict[str, Any], seconds: float = 30.0) -> list[dict[str, Any]]:
    """Every run of the soak once settled, or as it stands after `seconds`."""
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url + "/v1", headers=HEADERS, timeout=10) as http:
        while True:
            runs = [run for thread_id in state["threads"]
                    for run in http.get(f"/threads/{thread_id}/runs").json()["data"]]
            if all(run["status"] not in ACTIVE for run in runs) or time.monotonic() > deadline:
                return runs
            time.sleep(0.5)


def check(url: str, state: dict[str, Any], runs: list[dict[str, Any]],
          database: Database) -> dict[str, Any]:
    half, twice, lost = 0, 0, 0
    with httpx.Client(base_url=url + "/v1", headers=HEADERS, timeout=10) as http:
        for thread_id in state["threads"]:
            messages = http.get(f"/threads/{thread_id}/messages", params={"limit": 100}).json()
            answers = Counter(m["run_id"] for m in messages["data"] if m["role"] == "assistant")
            half += sum(1 for m in messages["data"]
                        if m["role"] == "assistant" and m["status"] == "in_progress")
            twice += sum(1 for count in answers.values() if count > 1)
        for thread_id, message_id in state["acknowledged"]:
            if http.get(f"/threads/{thread_id}/messages/{message_id}").status_code != 200:
                lost += 1
    statuses = Counter(run["status"] for run in runs)
    return {"runs": len(runs), "statuses": dict(statuses),
            "unsettled_after_30s": sum(statuses[s] for s in ACTIVE),
            "half_written": half, "answered_twice": twice, "acknowledged_lost": lost,
            "acknowledged": len(state["acknowledged"]),
            "retried": int(database.scalar("SELECT count(*) FROM runs WHERE retries > 0")),
            "failed_server_error": sum(1 for run in runs if run["status"] == "failed" and
                                       (run["last_error"] or {}).get("code") == "server_error")}


def main() -> int:
    args = parse_args()
    rng = random.Random(args.seed)
    tree = Tree("candidate", BENCH.parent, BENCH.parent / ".venv")
    with tempfile.TemporaryDirectory(prefix="kill-soak-") as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        backend, backend_url = start_backend(root / "backend.log")
        try:
            with Database(args.database, args.admin_url, root / "data", "soak") as database:
                env = {**database.env, "ASSISTANTS_BACKEND_BASE_URL": backend_url,
                       "ASSISTANTS_MODELS": "bench-model", "ASSISTANTS_LEASE_SECONDS": "1.5"}
                state: dict[str, Any] = {"threads": [], "acknowledged": []}
                started = time.monotonic()
                for kill in range(args.kills):
                    server, url = start_server(tree, root / "data", env, root / "server.log")
                    if kill == 0:
                        state["assistant"] = httpx.post(
                            url + "/v1/assistants", headers=HEADERS,
                            json={"model": "bench-model"}).json()["id"]
                    round_(url, state, rng, args.runs)
                    server.send_signal(signal.SIGKILL)
                    server.wait()
                    print(f"  kill {kill + 1}/{args.kills}", flush=True, end="\r")
                server, url = start_server(tree, root / "data", env, root / "server.log")
                try:
                    result = check(url, state, settle(url, state), database)
                finally:
                    stop(server)
                result |= {"database": args.database, "kills": args.kills,
                           "seconds": round(time.monotonic() - started, 1)}
        finally:
            stop(backend)
    report(result)
    out = BENCH / "results" / f"kill_soak-{args.database}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"results written to {out}")
    return 0


def report(r: dict[str, Any]) -> None:
    print(f"\n### kill -9 soak, {r['database']}: {r['kills']} kills, {r['runs']} runs, "
          f"{r['acknowledged']} acknowledged messages ({r['seconds']} s)\n")
    print("| figure | value | goal |\n|---|---:|---|")
    for key, goal in (("unsettled_after_30s", "0"), ("half_written", "0"),
                      ("answered_twice", "0"), ("acknowledged_lost", "0"),
                      ("retried", "-"), ("failed_server_error", "-")):
        print(f"| {key.replace('_', ' ')} | {r[key]} | {goal} |")
    print(f"\nrun statuses: {r['statuses']}")


if __name__ == "__main__":
    raise SystemExit(main())
