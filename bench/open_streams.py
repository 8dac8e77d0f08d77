"""Open streams across API processes: memory per stream, the time to open them, and the CPU
they cost while idle, with the topology of a scaled-out deployment.

For each stream count S (--streams, default 0,1000,10000), on a fresh PostgreSQL schema and a
fresh Redis key prefix (both removed afterwards, also on failure): one `assistants-server
worker` and K `assistants-server serve --role api` processes (--api-processes, default 2, each on
its own port), against bench/paced_backend.py answering its first token after --first-token-ms
and then one token every --token-seconds for as long as the measurement lasts, so every run
stays open. The bench creates R streamed runs (--runs) round-robin over the API processes,
reads each until its first delta, then opens S subscriptions to those runs' event logs
(`GET /v1/threads/{thread_id}/runs/{run_id}/events`, from the start: every client receives
the events logged so far at once, then the tokens as they come), spread round-robin over the
API processes and the runs, at most --connect-concurrency connecting at a time. A stream counts
as open once it has received an event.

Measured per process (RSS from /proc/<pid>/status, the process and its children): the RSS
before the streams open and with them open; memory per stream = (API RSS with S streams - API
RSS before) / S; the time until every stream had its first event; the CPU seconds (user +
system) of the API processes, the worker and Redis over --idle-seconds with the streams open
and idle (the model's slow tokens still relayed). The figure asked: memory per stream at the
largest S against S = 1,000 (linear: about 1).

The clients are asyncio protocols on uvloop in this process (a few hundred bytes per stream, and
no coroutine once it is open). RLIMIT_NOFILE is raised to its hard limit before anything
starts, so the server processes inherit it. Prints a Markdown table and the load it ran under,
writes JSON to bench/results/, and exits 1 when a stream did not open, closed early or a
process died.

    .venv/bin/python bench/open_streams.py [--streams 0,1000,10000] [--api-processes 2]
        [--runs 100] [--database-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvloop
from harness import (
    HEADERS,
    RESULTS,
    ROOT,
    BenchError,
    argument_parser,
    checked,
    cpu_seconds,
    drop_schema,
    free_port,
    machine,
    pct,
)
from redis.asyncio import Redis

DEFAULT_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
EXE = str(Path(sys.executable).with_name("assistants-server"))
MESSAGES = [{"role": "user", "content": "Say hello, slowly."}]


def parse_args() -> argparse.Namespace:
    p = argument_parser(__doc__)
    p.set_defaults(database_url=DEFAULT_DATABASE)
    p.add_argument("--redis-url", default=DEFAULT_REDIS)
    p.add_argument("--redis-max-connections", type=int, default=0,
                   help="the servers' Redis pool size, as ?max_connections= on their "
                   "ASSISTANTS_REDIS_URL (each open stream holds one connection; 0: redis-py's "
                   "default, 100 per process)")
    p.add_argument("--own-redis", type=int, default=0, metavar="MAXCLIENTS",
                   help="start a private redis-server on a free port with this maxclients "
                   "instead of using --redis-url (the default 10,000 counts every stream)")
    p.add_argument("--streams", default="0,1000,10000", help="stream counts to measure")
    p.add_argument("--api-processes", type=int, default=2)
    p.add_argument("--runs", type=int, default=100, help="runs the streams subscribe to")
    p.add_argument("--first-token-ms", type=int, default=50)
    p.add_argument("--token-seconds", type=float, default=5.0,
                   help="seconds between the model's tokens after the first")
    p.add_argument("--idle-seconds", type=float, default=10.0, help="idle CPU window")
    p.add_argument("--connect-concurrency", type=int, default=50,
                   help="streams connecting (not yet at their first event) at a time")
    p.add_argument("--first-event-timeout", type=float, default=60.0,
                   help="seconds a stream may wait for its first event")
    p.add_argument("--logs", type=Path, help="copy every process's log into this directory")
    p.add_argument("--open-timeout", type=float, default=1800.0,
                   help="seconds the streams may take to open; then the open ones are measured")
    p.add_argument("--level-timeout", type=float, default=2700.0,
                   help="seconds one stream count may take, start to cleanup")
    return p.parse_args()


# --- processes --------------------------------------------------------------------------


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`cmd` in a process group of its own (so that it and its children can be killed
    together), with the ASSISTANTS_ settings of `env` only."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
    return subprocess.Popen(cmd, cwd=ROOT, env=base | env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, process_group=0)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{proc.args} exited early:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"{url} did not answer 200 in {seconds:.0f} s")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's group, SIGKILL to it after 15 s."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # children left behind, if any
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _tree(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found = {pid}
    while True:
        below = {c for c, p in parents.items() if p in found} - found
        if not below:
            return found
        found |= below


def _status_kb(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rss_mb(pid: int) -> float:
    """VmRSS of `pid` and its children, MB."""
    return sum(_status_kb(p, "VmRSS") for p in _tree(pid)) / 1024


def hwm_mb(pid: int) -> float:
    """VmHWM (peak RSS) of `pid` and its children, MB."""
    return sum(_status_kb(p, "VmHWM") for p in _tree(pid)) / 1024


def open_fds(pid: int) -> int:
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{p}/fd"))
    return total


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load() -> dict[str, Any]:
    one, five, fifteen = os.getloadavg()
    return {"loadavg": [round(one, 2), round(five, 2), round(fifteen, 2)],
            "mem_available_mb": round(mem_available_mb())}


def server_redis_url(args: argparse.Namespace) -> str:
    if not args.redis_max_connections:
        return str(args.redis_url)
    joiner = "&" if "?" in args.redis_url else "?"
    return f"{args.redis_url}{joiner}max_connections={args.redis_max_connections}"


def start_redis(maxclients: int, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A private redis-server (no persistence) on a free loopback port, and its URL."""
    port = free_port()
    log = tmp / "redis.log"
    proc = _spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--maxclients", str(maxclients), "--dir", str(tmp)],
                  {}, log)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"redis-server exited:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(Exception):
            redis_info(url)
            return proc, url
        time.sleep(0.1)
    _kill_group(proc)
    raise BenchError("redis-server did not answer in 30 s")


@dataclass
class Topology:
    """The model, the worker and the API processes of one measurement, with their schema and
    Redis prefix."""

    args: argparse.Namespace
    tmp: Path
    name: str = field(default_factory=lambda: f"bench_streams_{uuid.uuid4().hex[:8]}")
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    api_urls: list[str] = field(default_factory=list)

    def start(self) -> None:
        a = self.args
        backend_port = free_port()
        backend_url = f"http://127.0.0.1:{backend_port}"
        # tokens enough to outlast the measurement: the answer never ends while it runs
        tokens = int(a.level_timeout / a.token_seconds) + 10
        log = self.tmp / f"{self.name}-backend.log"
        self.procs["backend"] = _spawn(
            [sys.executable, "bench/paced_backend.py", str(backend_port), "--first-token-ms",
             str(a.first_token_ms), "--tokens-per-s", str(1 / a.token_seconds),
             "--answer-tokens", str(tokens)], {}, log)
        _wait_ready(self.procs["backend"], backend_url + "/v1/models", log)
        common = {
            "ASSISTANTS_DATA_DIR": str(self.tmp / self.name), "ASSISTANTS_LOG_LEVEL": "warning",
            "ASSISTANTS_BACKEND_BASE_URL": backend_url + "/v1",
            "ASSISTANTS_DATABASE_URL": a.database_url, "ASSISTANTS_DATABASE_SCHEMA": self.name,
            "ASSISTANTS_REDIS_URL": server_redis_url(a), "ASSISTANTS_REDIS_PREFIX": self.name,
            # runs outlive the measurement (their lifetime, and the model's whole answer)
            "ASSISTANTS_RUN_LIFETIME_SECONDS": str(int(a.level_timeout) + 600),
            "ASSISTANTS_BACKEND_TIMEOUT_SECONDS": str(int(a.level_timeout) + 600)}
        port = free_port()
        log = self.tmp / f"{self.name}-worker.log"
        # The worker first: it migrates the schema before the API processes start.
        self.procs["worker"] = _spawn(
            [EXE, "worker", "--port", str(port)],
            common | {"ASSISTANTS_EXECUTOR_CONCURRENCY": str(a.runs + 16),
                      "ASSISTANTS_DATABASE_POOL_SIZE": "20"}, log)
        _wait_ready(self.procs["worker"], f"http://127.0.0.1:{port}/ready", log)
        for i in range(a.api_processes):
            port = free_port()
            log = self.tmp / f"{self.name}-api{i}.log"
            self.procs[f"api{i}"] = _spawn(
                [EXE, "serve", "--role", "api", "--port", str(port)],
                common | {"ASSISTANTS_DATABASE_POOL_SIZE": "10"}, log)
            self.api_urls.append(f"http://127.0.0.1:{port}")
            _wait_ready(self.procs[f"api{i}"], self.api_urls[-1] + "/ready", log)

    def apis(self) -> list[str]:
        return [name for name in self.procs if name.startswith("api")]

    def dead(self) -> list[str]:
        return [f"{name} (exit {p.returncode})" for name, p in self.procs.items()
                if p.poll() is not None]

    def stop(self) -> None:
        for name in [*self.apis(), "worker", "backend"]:
            if name in self.procs:
                _kill_group(self.procs[name])

    def logs(self) -> str:
        return "".join(f"\n--- {p.name}\n{p.read_text(errors='replace')[-2500:]}"
                       for p in sorted(self.tmp.glob(f"{self.name}-*.log")))

    async def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            await drop_schema(self.args.database_url, self.name)
        redis = Redis.from_url(self.args.redis_url)
        try:
            keys = [key async for key in redis.scan_iter(match=f"{self.name}:*", count=1000)]
            for start in range(0, len(keys), 1000):
                await redis.delete(*keys[start:start + 1000])
        finally:
            await redis.aclose()


# --- clients ----------------------------------------------------------------------------


class Stream(asyncio.Protocol):
    """One SSE subscription over a raw socket: counts the events it receives (the `event:`
    lines; `: ping` comments are not events) and notes when the first one came and whether
    the server closed it."""

    __slots__ = ("request", "first", "opened_at", "first_at", "status", "events", "received",
                 "head", "tail", "closed", "transport")

    def __init__(self, request: bytes, first: asyncio.Future[None]) -> None:
        self.request, self.first = request, first
        self.opened_at = time.perf_counter()
        self.first_at = 0.0
        self.status = 0
        self.events = self.received = 0
        self.head = self.tail = b""
        self.closed = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if not self.status:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = int(self.head[9:12])
            data, self.head = self.head[end + 4:], b""
            if self.status != 200:
                self._fail(f"HTTP {self.status}: {data[:200]!r}")
                return
        text = self.tail + data  # `tail` (6 bytes) cannot hold a whole "event: "
        found = text.count(b"event: ")
        self.tail = text[-6:]
        if found:
            self.events += found
            if not self.first.done():
                self.first_at = time.perf_counter()
                self.first.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(f"closed before its first event ({exc!r})")

    def _fail(self, why: str) -> None:
        if not self.first.done():
            self.first.set_exception(BenchError(why))
        if self.transport is not None:
            self.transport.close()


async def open_streams(urls: list[str], runs: list[tuple[str, str]], count: int,
                       args: argparse.Namespace, opened: list[Stream] | None = None,
                       errors: dict[str, int] | None = None,
                       ) -> tuple[list[Stream], dict[str, int], float]:
    """`count` streams, round-robin over `urls` and `runs`; (the streams that received an
    event, appended to `opened` as they do, errors by kind, seconds until the last of them
    had its first event)."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(args.connect_concurrency)
    opened = [] if opened is None else opened
    errors = {} if errors is None else errors
    t0 = time.perf_counter()

    async def one(i: int) -> None:
        url = httpx.URL(urls[i % len(urls)])
        thread, run = runs[(i // len(urls)) % len(runs)]
        request = (f"GET /v1/threads/{thread}/runs/{run}/events HTTP/1.1\r\n"
                   f"host: {url.host}:{url.port}\r\naccept: text/event-stream\r\n"
                   + "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items()) + "\r\n").encode()
        async with gate:
            first: asyncio.Future[None] = loop.create_future()
            stream: Stream | None = None
            try:
                _, stream = await asyncio.wait_for(loop.create_connection(
                    lambda: Stream(request, first), url.host, url.port), 30)
                await asyncio.wait_for(first, args.first_event_timeout)
                opened.append(stream)
            except (OSError, TimeoutError, BenchError) as exc:
                kind = f"{type(exc).__name__}: {str(exc)[:120]}"
                errors[kind] = errors.get(kind, 0) + 1
                if stream is not None and stream.transport is not None:
                    stream.transport.close()

    await asyncio.gather(*(one(i) for i in range(count)))
    last = max((s.first_at for s in opened), default=t0)
    return opened, errors, last - t0


async def create_runs(urls: list[str], count: int) -> list[tuple[str, str]]:
    """`count` streamed runs, round-robin over `urls`, each read until its first delta (the
    model is answering) and then left to the worker: (thread id, run id) of each."""
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(headers=HEADERS, timeout=60, limits=limits) as http:
        assistant = str(checked(await http.post(urls[0] + "/v1/assistants", json={
            "model": "bench-model"}))["id"])
        gate = asyncio.Semaphore(20)

        async def one(i: int) -> tuple[str, str]:
            body = {"assistant_id": assistant, "stream": True,
                    "thread": {"messages": MESSAGES}}
            async with gate, http.stream("POST", urls[i % len(urls)] + "/v1/threads/runs",
                                         json=body) as response:
                if response.status_code != 200:
                    raise BenchError(f"run: HTTP {response.status_code} "
                                     f"{(await response.aread())[:200]!r}")
                run: dict[str, Any] = {}
                name = ""
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: ") and name == "thread.run.created":
                        run = json.loads(line[6:])
                    elif name == "thread.message.delta":
                        break
                    elif name in ("thread.run.failed", "done"):
                        raise BenchError(f"a run ended before its first delta: {name}")
            return str(run["thread_id"]), str(run["id"])

        return list(await asyncio.gather(*(one(i) for i in range(count))))


async def warm_up(urls: list[str], runs: list[tuple[str, str]],
                  args: argparse.Namespace) -> None:
    """A few streams opened and closed on each process, so that what a first stream loads
    once (modules, pools) is not counted per stream."""
    streams, errors, _ = await open_streams(urls, runs, 20 * len(urls), args)
    for stream in streams:
        if stream.transport is not None:
            stream.transport.close()
    if errors:
        raise BenchError(f"warm-up streams failed: {errors}")
    await asyncio.sleep(1.0)


# --- one measurement --------------------------------------------------------------------


def redis_info(url: str) -> dict[str, Any]:
    async def ask() -> dict[str, Any]:
        redis = Redis.from_url(url)
        try:
            info = await redis.info()
        finally:
            await redis.aclose()
        return {"pid": int(info["process_id"]), "clients": int(info["connected_clients"]),
                "maxclients": int((await _config(url)).get("maxclients", 0))}
    return asyncio.run(ask())


async def _config(url: str) -> dict[str, str]:
    redis = Redis.from_url(url, decode_responses=True)
    try:
        return dict(await redis.config_get("maxclients"))
    except Exception:  # CONFIG may be disabled
        return {}
    finally:
        await redis.aclose()


async def measure(top: Topology, count: int, args: argparse.Namespace,
                  redis_pid: int) -> dict[str, Any]:
    pids = {name: p.pid for name, p in top.procs.items()}
    apis = top.apis()
    runs = await create_runs(top.api_urls, args.runs)
    await warm_up(top.api_urls, runs, args)
    await asyncio.sleep(2.0)
    row: dict[str, Any] = {"streams": count, "load_before": load()}
    row["rss_before_mb"] = {n: rss_mb(pids[n]) for n in [*apis, "worker"]}
    row["fds_before"] = {n: open_fds(pids[n]) for n in apis}
    streams: list[Stream] = []
    row["_clients_cpu0"] = _own_cpu()
    sampler = asyncio.ensure_future(progress(pids, apis, redis_pid, streams, row))
    errors: dict[str, int] = {}
    t0 = time.perf_counter()
    try:
        _, _, open_s = await asyncio.wait_for(
            open_streams(top.api_urls, runs, count, args, streams, errors), args.open_timeout)
    except TimeoutError:  # measure the streams that did open
        errors["not open when --open-timeout ran out"] = (
            count - len(streams) - sum(errors.values()))
        open_s = time.perf_counter() - t0
    finally:
        sampler.cancel()
    row |= {"opened": len(streams), "open_errors": errors, "open_s": open_s,
            "clients_cpu_s_opening": _own_cpu() - row.pop("_clients_cpu0")}
    waits = sorted((s.first_at - s.opened_at) * 1000 for s in streams)
    if len(waits) >= 2:
        row["first_event_ms"] = {"p50": pct(waits, 50), "p99": pct(waits, 99),
                                 "max": waits[-1]}
    await asyncio.sleep(2.0)
    row["redis_clients_open"] = (await _redis_clients(args.redis_url))
    cpu0 = {n: cpu_seconds(pids[n]) for n in [*apis, "worker"]}
    cpu0["redis"] = cpu_seconds(redis_pid, tree=False)
    cpu0["clients"] = _own_cpu()
    commands0 = await _redis_commands(args.redis_url)
    events0 = sum(s.events for s in streams)
    t0 = time.perf_counter()
    await asyncio.sleep(args.idle_seconds)
    wall = time.perf_counter() - t0
    cpu = {n: cpu_seconds(pids[n]) - cpu0[n] for n in [*apis, "worker"]}
    cpu["redis"] = cpu_seconds(redis_pid, tree=False) - cpu0["redis"]
    cpu["clients"] = _own_cpu() - cpu0["clients"]
    commands = await _redis_commands(args.redis_url) - commands0
    row["idle"] = {"seconds": wall, "cpu_s": cpu,
                   "cores": {n: c / wall for n, c in cpu.items()},
                   "events": sum(s.events for s in streams) - events0,
                   "redis_commands_per_s": commands / wall}
    row["rss_open_mb"] = {n: rss_mb(pids[n]) for n in [*apis, "worker"]}
    row["rss_peak_mb"] = {n: hwm_mb(pids[n]) for n in [*apis, "worker"]}
    row["fds_open"] = {n: open_fds(pids[n]) for n in apis}
    row["closed_early"] = sum(s.closed for s in streams)
    row["load_open"] = load()
    for stream in streams:
        if stream.transport is not None:
            stream.transport.close()
    growth = sum(row["rss_open_mb"][n] - row["rss_before_mb"][n] for n in apis)
    row["api_growth_mb"] = growth
    row["per_stream_kb"] = growth * 1024 / len(streams) if streams else None
    row["dead"] = top.dead()
    return row


async def progress(pids: dict[str, int], apis: list[str], redis_pid: int,
                   streams: list[Stream], row: dict[str, Any], every: float = 10.0) -> None:
    """Every `every` seconds while streams open: how many are open and the cores the API
    processes and Redis kept busy since the sample before (in `row["opening"]`)."""
    samples: list[dict[str, float]] = row.setdefault("opening", [])
    t0 = last_t = time.perf_counter()
    names = [*apis, "redis"]

    def times() -> list[float]:
        return [*(cpu_seconds(pids[n]) for n in apis), cpu_seconds(redis_pid, tree=False)]

    last = times()
    while True:
        await asyncio.sleep(every)
        now, cpu = time.perf_counter(), times()
        samples.append({"t": round(now - t0, 1), "open": len(streams)} | {
            f"{n}_cores": round((c - b) / (now - last_t), 2)
            for n, c, b in zip(names, cpu, last, strict=True)})
        print(f"  {samples[-1]}", flush=True)
        last, last_t = cpu, now


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _redis_commands(url: str) -> int:
    redis = Redis.from_url(url)
    try:
        return int((await redis.info("stats"))["total_commands_processed"])
    finally:
        await redis.aclose()


async def _redis_clients(url: str) -> int:
    redis = Redis.from_url(url)
    try:
        return int((await redis.info("clients"))["connected_clients"])
    finally:
        await redis.aclose()


class Terminated(Exception):
    """SIGTERM or SIGINT: stop measuring, clean up, report what was measured."""


def _terminate(*_: object) -> None:
    raise Terminated


def on_signals() -> None:
    """Outside an event loop, a signal raises Terminated where the bench is (an event loop's
    own handlers, below, replace this while it runs and reset it when it closes)."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)


async def guarded(coro: Any, seconds: float) -> Any:
    """`coro` within `seconds`; a signal cancels it (raised in a protocol's callback, the
    event loop would only log it) and raises Terminated."""
    loop = asyncio.get_running_loop()
    measuring = asyncio.ensure_future(coro)
    stopped = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: (stopped.append(True), measuring.cancel()))
    try:
        return await asyncio.wait_for(measuring, seconds)
    except asyncio.CancelledError:
        if stopped:
            raise Terminated from None
        raise


def level(count: int, args: argparse.Namespace, tmp: Path, redis_pid: int) -> dict[str, Any]:
    top = Topology(args, tmp)
    try:
        top.start()
        row = uvloop.run(guarded(measure(top, count, args, redis_pid), args.level_timeout))
        if row["dead"] or row["open_errors"] or row["closed_early"]:
            row["logs"] = top.logs()
        return row
    except (BenchError, httpx.HTTPError, TimeoutError, Terminated) as exc:
        return {"streams": count, "failed": repr(exc), "dead": top.dead(), "logs": top.logs(),
                "terminated": isinstance(exc, Terminated)}
    finally:
        on_signals()  # the event loop's close reset them
        top.stop()
        asyncio.run(top.cleanup())
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
            for log in tmp.glob(f"{top.name}-*.log"):
                shutil.copy(log, args.logs / f"{count}-{log.name}")


# --- report -----------------------------------------------------------------------------


def _mb(values: dict[str, float], names: list[str]) -> str:
    return " + ".join(f"{values[n]:.0f}" for n in names)


def report(rows: list[dict[str, Any]], args: argparse.Namespace, host: dict[str, Any]) -> None:
    k = args.api_processes
    apis = [f"api{i}" for i in range(k)]
    print(f"\n{k} API processes + 1 worker, PostgreSQL + Redis (servers' pool "
          f"{args.redis_max_connections or 'default'}), {args.runs} runs (a token "
          f"every {args.token_seconds:g} s), {host['cpus']} cores; load average at start "
          f"{host['load_at_start']['loadavg']}, {host['load_at_start']['mem_available_mb']:,} MB "
          "available\n")
    print("| streams | got a first event | time to all first events | first event p50 / p99 "
          "| API RSS before (MB, each) | API RSS open (MB, each) | per stream | worker RSS "
          "before / open | API cores, idle | worker / Redis / clients cores, idle | events in "
          "idle | Redis commands/s, idle | Redis clients |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if "failed" in r:
            print(f"| {r['streams']:,} | failed: {r['failed'][:160]} ||||||||||||")
            continue
        idle = r["idle"]["cores"]
        first = r.get("first_event_ms")
        waits = f"{first['p50']:.0f} / {first['p99']:.0f} ms" if first else "-"
        per = f"{r['per_stream_kb']:.1f} KB" if r["per_stream_kb"] is not None else "-"
        print(f"| {r['streams']:,} | {r['opened']:,} | {r['open_s']:.1f} s | "
              f"{waits} | "
              f"{_mb(r['rss_before_mb'], apis)} | {_mb(r['rss_open_mb'], apis)} | {per} | "
              f"{r['rss_before_mb']['worker']:.0f} / {r['rss_open_mb']['worker']:.0f} | "
              f"{sum(idle[n] for n in apis):.2f} | {idle['worker']:.2f} / {idle['redis']:.2f} / "
              f"{idle['clients']:.2f} | {r['idle']['events']:,} | "
              f"{r['idle']['redis_commands_per_s']:,.0f} | {r['redis_clients_open']:,} |")
        if r["open_errors"] or r["closed_early"] or r["dead"]:
            print(f"\n  errors: {r['open_errors']}, closed early {r['closed_early']}, "
                  f"dead {r['dead']}\n")
    per = {r["streams"]: r.get("per_stream_kb") for r in rows if r.get("per_stream_kb")}
    if 1000 in per and max(per) > 1000:
        top = max(per)
        print(f"\nmemory per stream at {top:,} / at 1,000: {per[top]:.1f} / {per[1000]:.1f} KB "
              f"= {per[top] / per[1000]:.2f} (linear: 1)")


def main() -> int:
    args = parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the servers
    counts = [int(value) for value in args.streams.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-open-streams-"))
    private = None
    on_signals()  # `finally` clauses still clean up
    try:
        if args.own_redis:
            private, args.redis_url = start_redis(args.own_redis, tmp)
        return run(args, counts, tmp, (soft, hard))
    except (BenchError, Terminated) as exc:
        print(f"benchmark aborted: {exc}")
        return 1
    finally:
        if private is not None:
            _kill_group(private)
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, counts: list[int], tmp: Path,
        nofile: tuple[int, int]) -> int:
    soft, hard = nofile
    redis = redis_info(args.redis_url)
    host = machine() | {"load_at_start": load(), "nofile": [soft, hard], "redis": redis}
    print(f"{host['cpus']} cores, load average {host['load_at_start']['loadavg']}, "
          f"{host['load_at_start']['mem_available_mb']:,} MB available, open files {hard}, "
          f"Redis {args.redis_url} maxclients {redis['maxclients']} "
          f"({redis['clients']} connected), "
          f"servers' Redis pool {args.redis_max_connections or 'default (100)'}", flush=True)
    if max(counts) > hard - 500:  # the clients hold one descriptor per stream, here
        print(f"warning: {max(counts):,} streams need as many descriptors; the limit is {hard}")
    rows: list[dict[str, Any]] = []
    for count in counts:
        rows.append(level(count, args, tmp, redis["pid"]))
        r = rows[-1]
        print(f"{count:,} streams: " + (f"FAILED {r['failed']}" if "failed" in r else
              f"{r['opened']:,} opened in {r['open_s']:.1f} s, "
              f"{r['per_stream_kb'] or 0:.1f} KB per stream"), flush=True)
        if r.get("terminated"):
            break
    report(rows, args, host)
    for r in rows:
        if r.get("logs"):
            print(f"\nlogs of the {r['streams']:,}-stream measurement:{r['logs']}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"open-streams-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"machine": host, "args": vars(args) | {
        "database_url": args.database_url.split("@")[-1]}, "rows": rows}, indent=2, default=str))
    print(f"\nresults written to {out}")
    bad = [r for r in rows if "failed" in r or r["open_errors"] or r["closed_early"]
           or r["dead"] or r["opened"] < r["streams"]]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
