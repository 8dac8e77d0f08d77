"""`ASSISTANTS_WORKERS`: several server processes on one port and one database, each driving
runs with its own executor, none of a run's writes lost or doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from assistants_server.config import Settings
from tests.runs.test_process_death import HEADERS, _serve
from tests.test_cli import EXE, _free_port, _wait_for


def _workers(pid: int) -> list[int]:
    """The worker processes `pid` spawned (not multiprocessing's resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == pid and b"resource_tracker" not in command:
            found.append(int(stat.parent.name))
    return found


def _connections_held(pid: int, port: int) -> int:
    """Established connections to `port` whose socket process `pid` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                held += 1
    return held


async def _run_to_end(client: httpx.AsyncClient, assistant_id: str, n: int) -> dict[str, Any]:
    run = (await client.post("/threads/runs", json={
        "assistant_id": assistant_id,
        "thread": {"messages": [{"role": "user", "content": f"question {n}"}]}})).json()
    deadline = time.monotonic() + 30
    while run["status"] in ("queued", "in_progress"):
        assert time.monotonic() < deadline, f"run {run['id']} did not end"
        await asyncio.sleep(0.05)
        run = (await client.get(f"/threads/{run['thread_id']}/runs/{run['id']}")).json()
    return dict(run)


async def test_two_processes_share_the_port_and_complete_every_run(settings: Settings) -> None:
    port = _free_port()
    server = _serve(settings, port, workers="2")
    try:
        deadline = time.monotonic() + 30
        while len(workers := _workers(server.pid)) < 2:  # the second may still be starting
            assert time.monotonic() < deadline, "fewer than two worker processes started"
            await asyncio.sleep(0.1)
        # One connection per run, so that the kernel spreads them over both processes.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/v1", headers=HEADERS,
                                     limits=limits, timeout=30) as client:
            assistant = (await client.post("/assistants", json={"model": "fake-model"})).json()
            runs = await asyncio.gather(*(
                _run_to_end(client, assistant["id"], n) for n in range(40)))
            assert {run["status"] for run in runs} == {"completed"}
            for run in runs:  # each answered once: no run was driven by both processes
                messages = (await client.get(f"/threads/{run['thread_id']}/messages")).json()
                assert [m["role"] for m in messages["data"]] == ["assistant", "user"]
                assert messages["data"][0]["content"][0]["text"]["value"] == "Hello!"
        assert sorted(_workers(server.pid)) == sorted(workers) and len(workers) == 2
        # Kept-alive connections are spread over both processes (a socket each, SO_REUSEPORT),
        # not taken by whichever accepted first.
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)
                   for _ in range(24)]
        try:
            # At once: a burst of connections is where one shared socket went to one process.
            answers = await asyncio.gather(*(client.get("/health") for client in clients))
            assert {answer.status_code for answer in answers} == {200}
            held = [_connections_held(pid, port) for pid in workers]
            assert sum(held) == 24 and min(held) >= 3, held
        finally:
            for client in clients:
                await client.aclose()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_worker_that_keeps_dying_is_restarted_and_never_stops_the_server(
    tmp_path: Path,
) -> None:
    """Only the first start can fail the server: a worker killed, and its replacement killed
    again at once, is replaced again (after a pause), while the other one serves on."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
    env.update(ASSISTANTS_DATA_DIR=str(tmp_path), ASSISTANTS_WORKERS="2")
    server = subprocess.Popen([EXE, "serve", "--port", str(port)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(server.stdout or ()), daemon=True).start()
    try:
        _wait_for(f"http://127.0.0.1:{port}/health")
        deadline = time.monotonic() + 30
        # Both serve, as the supervisor knows it: uvicorn logs "startup complete" before the
        # process tells the supervisor, and a process killed in between is a failed start.
        while sum("is serving" in line for line in list(lines)) < 2:
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        first = _two_workers(server.pid, [])
        os.kill(first[0], signal.SIGKILL)
        second = _two_workers(server.pid, first[:1])
        [replacement] = set(second) - set(first)
        os.kill(replacement, signal.SIGKILL)  # a second death within seconds of its start
        third = _two_workers(server.pid, [first[0], replacement])
        assert server.poll() is None and replacement not in third
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def _two_workers(pid: int, dead: list[int]) -> list[int]:
    """Wait until `pid` has two worker processes again, none of them `dead`."""
    deadline = time.monotonic() + 30
    while True:
        workers = [w for w in _workers(pid) if w not in dead and _alive(w)]
        if len(workers) == 2:
            return workers
        assert time.monotonic() < deadline, f"workers: {workers}"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
