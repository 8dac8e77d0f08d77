"""A run's start cost against its thread's length: threads of 10 and of 10,000 messages, the same
context budget, for the candidate source tree and (by default) the baseline too.

For each tree, its own virtualenv's `assistants-server serve` on a free loopback port (a fresh
SQLite database in a temp dir, or with --database postgres a PostgreSQL database created,
ANALYZEd after seeding, and dropped), against the fake model (bench/paced_backend.py in its own
process) answering at once: one token that carries the time the request arrived, the number of
messages it held and their characters, padded so that the answer costs exactly as many tokens
as a seeded message does.

Setup: an assistant; one thread of --big messages (one `POST /v1/threads` with all of them, or
--batch messages per thread creation and the rest through `POST .../messages`, --parallel at a
time); a fresh thread of --small messages for every timed sample (so a small thread always
holds --small messages when its run starts; the big thread grows by one answer per run).
Messages alternate user and assistant, each of the same token cost (the answer's template).

The context budget is the same for both threads and holds --small messages (10.5 of them):
  --budget context_window (default): a configuration file gives the backend a context_window
      small enough that `auto` truncation fits 10 messages (the window, less the reply's room
      and the tokenizer margin, as engine/context.py computes them);
  --budget max_prompt_tokens: each run sets max_prompt_tokens to that budget;
  --budget last_messages: each run sets truncation_strategy last_messages = --small.
The fake reports how many messages each request held, so the report shows both contexts.

Timed: one run at a time, small and big threads alternating (the order flips every pair):
`POST /v1/threads/{id}/runs` with stream=true, read to its end. Start = the fake's arrival
time less the time the POST was sent; completed = `thread.run.completed` read less the same.
Goal: p50 start (10,000) / p50 start (10) <= 1.5. Prints a markdown table, writes JSON to
--out (default bench/results/thread_length-<database>-<time>.json), exits 0.

    .venv/bin/python bench/thread_length.py [--database sqlite|postgres]
        [--trees baseline,candidate] [--samples 100] [--budget context_window]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import HEADERS, RESULTS, BenchError, checked, machine, pct, stop  # noqa: E402
from paced_backend import MODEL, arrival_stamp, emit_stamp, filler  # noqa: E402
from trees import (  # noqa: E402
    Database,
    Tree,
    add_tree_arguments,
    start_backend,
    start_server,
    trees_from,
)

GOAL_RATIO = 1.5
ARRIVAL = re.compile(rb"\^(\d{10}\.\d{6}):(\d{5}):(\d{9})")
EVENT = re.compile(rb"^event: (\S+)", re.MULTILINE)
REPLY_CAP = 64  # the backend's max_completion_tokens in the configuration file


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_tree_arguments(p, "baseline,candidate")
    p.add_argument("--small", type=int, default=10, help="messages in a small thread")
    p.add_argument("--big", type=int, default=10_000, help="messages in the big thread")
    p.add_argument("--samples", type=int, default=100, help="timed runs per thread size")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs per thread size")
    p.add_argument("--pad-words", type=int, default=40,
                   help="filler words per message (and per answer)")
    p.add_argument("--budget", choices=("context_window", "max_prompt_tokens", "last_messages"),
                   default="context_window")
    p.add_argument("--batch", type=int, default=0,
                   help="messages per thread creation for the big thread (0: all in one)")
    p.add_argument("--parallel", type=int, default=8,
                   help="message creations at once when --batch is set")
    p.add_argument("--start-attempts", type=int, default=3)
    p.add_argument("--retry-seconds", type=float, default=120.0)
    p.add_argument("--out", type=Path, help="JSON results (default bench/results/...)")
    return p.parse_args()


def seeded_text() -> str:
    """A message shaped like the fake's answer (the same stamps, zeroed, and filler)."""
    return arrival_stamp(0, 0, 0) + emit_stamp(0)


class Budget:
    """The context budget that holds `small` messages of this cost, and how each run gets it."""

    def __init__(self, args: argparse.Namespace) -> None:
        from assistants_server.engine.context import TOKENIZER_MARGIN
        from assistants_server.tokens import REPLY_PRIMING, count_message

        self.mode, self.small = args.budget, args.small
        text = seeded_text() + filler(args.pad_words)
        self.message_tokens = count_message({"role": "user", "content": text})
        # Room for `small` messages and half of one more, plus the reply's priming.
        self.tokens = args.small * self.message_tokens + self.message_tokens // 2 + REPLY_PRIMING
        self.window = 256
        while (self.window - min(REPLY_CAP, self.window // 4)
               - int(self.window * TOKENIZER_MARGIN)) < self.tokens:
            self.window += 1

    def config(self, backend_url: str) -> str | None:
        if self.mode != "context_window":
            return None
        return (f"backends:\n  - name: fake\n    base_url: {backend_url}\n"
                f"    context_window: {self.window}\n"
                f"    max_completion_tokens: {REPLY_CAP}\n"
                f"models:\n  - name: {MODEL}\n    backend: fake\n")

    def run_fields(self) -> dict[str, Any]:
        if self.mode == "max_prompt_tokens":
            return {"max_prompt_tokens": max(256, self.tokens)}
        if self.mode == "last_messages":
            return {"truncation_strategy": {"type": "last_messages",
                                            "last_messages": self.small}}
        return {}

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "message_tokens": self.message_tokens,
                "budget_tokens": self.tokens,
                "context_window": self.window if self.mode == "context_window" else None,
                **self.run_fields()}


def messages(count: int, pad_words: int, start: int = 0) -> list[dict[str, str]]:
    text = seeded_text() + filler(pad_words)
    return [{"role": "user" if (start + i) % 2 == 0 else "assistant", "content": text}
            for i in range(count)]


async def make_big_thread(api: httpx.AsyncClient, args: argparse.Namespace) -> str:
    first = args.batch or args.big
    thread = checked(await api.post("/v1/threads",
                                    json={"messages": messages(first, args.pad_words)}))
    rest = iter(range(first, args.big))

    async def add() -> None:
        for index in rest:
            checked(await api.post(f"/v1/threads/{thread['id']}/messages",
                                   json=messages(1, args.pad_words, index)[0]))
    await asyncio.gather(*(add() for _ in range(args.parallel)))
    return str(thread["id"])


async def timed_run(api: httpx.AsyncClient, thread: str, body: dict[str, Any],
                    ) -> dict[str, Any]:
    sent = time.time()
    arrival, done, last, buffer = None, None, "none", b""
    async with api.stream("POST", f"/v1/threads/{thread}/runs", json=body) as response:
        if response.status_code != 200:
            raise BenchError(f"run: HTTP {response.status_code} {await response.aread()!r}")
        async for data in response.aiter_raw():
            now = time.time()
            *frames, buffer = (buffer + data).split(b"\n\n")
            for frame in frames:
                event = EVENT.search(frame)
                name = event.group(1).decode() if event else ""
                if name == "thread.message.delta" and arrival is None:
                    found = ARRIVAL.search(frame)
                    if found:
                        arrival = (float(found.group(1)), int(found.group(2)),
                                   int(found.group(3)))
                elif name.startswith("thread.run."):
                    last = name[len("thread.run."):]
                    if last == "completed":
                        done = now
    if arrival is None or done is None:
        raise BenchError(f"a run ended with {last} (arrival seen: {arrival is not None})")
    return {"start_ms": (arrival[0] - sent) * 1000, "completed_ms": (done - sent) * 1000,
            "messages": arrival[1], "chars": arrival[2]}


def summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    start = [s["start_ms"] for s in samples]
    done = [s["completed_ms"] for s in samples]
    return {"n": len(samples),
            "start_ms": {"p50": pct(start, 50), "p95": pct(start, 95), "max": max(start)},
            "completed_ms": {"p50": pct(done, 50), "p95": pct(done, 95)},
            "messages_sent": sorted({s["messages"] for s in samples}),
            "prompt_chars": sorted({s["chars"] for s in samples})}


async def measure(url: str, args: argparse.Namespace, budget: Budget,
                  db: Database) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=300) as api:
        assistant = checked(await api.post("/v1/assistants", json={"model": MODEL}))["id"]
        began = time.perf_counter()
        big = await make_big_thread(api, args)
        big_s = time.perf_counter() - began
        smalls = [checked(await api.post("/v1/threads", json={
            "messages": messages(args.small, args.pad_words)}))["id"]
            for _ in range(args.warmup + args.samples)]
        if db.kind == "postgres":
            await asyncio.to_thread(db.execute, "ANALYZE")
        body = {"assistant_id": assistant, "stream": True, **budget.run_fields()}
        samples: dict[str, list[dict[str, Any]]] = {"small": [], "big": []}
        for i, small in enumerate(smalls):
            pair = [("small", small), ("big", big)]
            for kind, thread in (pair if i % 2 == 0 else pair[::-1]):
                result = await timed_run(api, thread, body)
                if i >= args.warmup:
                    samples[kind].append(result)
    small_s, big_s_ = summary(samples["small"]), summary(samples["big"])
    return {"big_thread_seed_s": big_s, "small": small_s, "big": big_s_,
            "ratio_start_p50": big_s_["start_ms"]["p50"] / small_s["start_ms"]["p50"],
            "ratio_completed_p50": big_s_["completed_ms"]["p50"]
            / small_s["completed_ms"]["p50"],
            "same_context": small_s["messages_sent"] == big_s_["messages_sent"]}


def measure_tree(tree: Tree, args: argparse.Namespace, budget: Budget, backend: str,
                 tmp: Path) -> dict[str, Any]:
    data = tmp / tree.name
    data.mkdir()
    env = {"ASSISTANTS_BACKEND_BASE_URL": backend}
    config = budget.config(backend)
    if config is not None:
        (data / "assistants.yaml").write_text(config)
        env = {"ASSISTANTS_CONFIG": str(data / "assistants.yaml")}
    with Database(args.database, args.pg_admin_url, data, f"threadlen_{tree.name}") as db:
        server, url = start_server(tree, data, env | db.env, data / "server.log",
                                   attempts=args.start_attempts,
                                   retry_seconds=args.retry_seconds)
        try:
            print(f"  {tree.name}: server up at {url}; seeding and timing", flush=True)
            result = asyncio.run(measure(url, args, budget, db))
        except BaseException:
            print(f"  {tree.name}: server log tail:\n{(data / 'server.log').read_text()[-3000:]}")
            raise
        finally:
            stop(server)
    result["goal_met"] = result["ratio_start_p50"] <= GOAL_RATIO
    return {"tree": tree.describe()} | result


def report(args: argparse.Namespace, budget: Budget, measured: list[dict[str, Any]]) -> None:
    b = budget.describe()
    how = (f"last_messages {args.small}" if b["mode"] == "last_messages" else
           f"budget {b['budget_tokens']} tokens by {b['mode']}"
           + (f" (context_window {b['context_window']})" if b["context_window"] else ""))
    print(f"\n### A run's start against its thread's length, {args.database}: {args.small} vs "
          f"{args.big:,} messages of {b['message_tokens']} tokens; {how}"
          + f"; {args.samples} runs per size, one at a time (times in ms)\n")
    print("| tree | thread | messages sent to the model | start p50 | start p95 | completed p50 "
          f"| ratio start p50 (goal <= {GOAL_RATIO:g}) | ratio completed p50 |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in measured:
        for kind, size in (("small", args.small), ("big", args.big)):
            s = r[kind]
            ratio = (f"**{r['ratio_start_p50']:.2f}**, "
                     f"{'met' if r['goal_met'] else 'MISSED'}") if kind == "big" else ""
            print(f"| {r['tree']['name']} (`{r['tree']['commit']}`) | {size:,} | "
                  f"{'/'.join(map(str, s['messages_sent']))} | {s['start_ms']['p50']:.2f} | "
                  f"{s['start_ms']['p95']:.2f} | {s['completed_ms']['p50']:.2f} | {ratio} | "
                  + (f"{r['ratio_completed_p50']:.2f}" if kind == "big" else "") + " |")
        if not r["same_context"]:
            print(f"(!) {r['tree']['name']}: the two threads' contexts differ in messages: "
                  f"{r['small']['messages_sent']} vs {r['big']['messages_sent']}")


def main() -> int:
    args = parse_args()
    trees = trees_from(args)
    budget = Budget(args)
    tmp = Path(tempfile.mkdtemp(prefix="bench-threadlen-"))
    measured: list[dict[str, Any]] = []
    backend = None
    try:
        backend, backend_url = start_backend(
            tmp / "backend.log", "--first-token-ms", "0", "--tokens-per-s", "0",
            "--answer-tokens", "1", "--pad-words", str(args.pad_words))
        for tree in trees:
            print(f"{tree.name}: {tree.root} ({args.database})", flush=True)
            measured.append(measure_tree(tree, args, budget, backend_url, tmp))
    except (BenchError, httpx.HTTPError) as exc:
        print(f"benchmark aborted: {exc}")
        if not measured:
            return 1
    finally:
        stop(backend)
        shutil.rmtree(tmp, ignore_errors=True)
    report(args, budget, measured)
    out = args.out or RESULTS / (f"thread_length-{args.database}-"
                                 f"{time.strftime('%Y%m%dT%H%M%S')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "database": args.database, "machine": machine(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "budget": budget.describe(), "goal_ratio": GOAL_RATIO, "results": measured}, indent=2))
    print(f"\nresults written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
