"""A process that stops does not cancel anyone's run: runs in progress may finish within the
grace period, the others are handed back (queued again) and finished by the next process, and
a client that was streaming resumes with `Last-Event-ID`, the ids going on from where it was."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from assistants_server.engine.executor import Executor
from tests.conftest import LiveServer
from tests.fake_backend import Reply
from tests.runs.test_run_rules import _setup, _start, _wait

EXE = str(Path(sys.executable).with_name("assistants-server"))
HEADERS = {"OpenAI-Beta": "assistants=v2", "Authorization": "Bearer any"}


async def _asked(sent: list[dict[str, Any]], count: int) -> None:
    deadline = time.monotonic() + 10
    while len(sent) < count:
        assert time.monotonic() < deadline, "the model was never asked"
        await asyncio.sleep(0.01)


async def test_a_stopping_process_hands_its_run_back_and_the_next_one_finishes_it(
    app: FastAPI, client: httpx.AsyncClient, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    script.extend([Reply(text="never heard", hang_seconds=30), Reply(text="answered anew")])
    assistant_id, thread_id = await _setup(client)
    run = await _start(client, thread_id, assistant_id)
    await _asked(sent, 1)
    old: Executor = app.state.executor
    await old.stop()  # no grace: the turn in progress is handed back at once
    handed = (await client.get(f"/v1/threads/{thread_id}/runs/{run['id']}")).json()
    assert handed["status"] == "queued" and handed["cancelled_at"] is None
    steps = await client.get(f"/v1/threads/{thread_id}/runs/{run['id']}/steps")
    assert steps.json()["data"] == []  # nothing of the dropped turn is left
    new = Executor(app.state.sessionmaker, old.backend, profiles=old.profiles, bus=old.bus,
                   services=old.services)
    await new.start()
    try:
        done = await _wait(client, thread_id, run["id"], "completed", "failed", "cancelled")
    finally:
        await new.stop()
    assert done["status"] == "completed"
    messages = (await client.get(f"/v1/threads/{thread_id}/messages")).json()["data"]
    assert messages[0]["content"][0]["text"]["value"] == "answered anew"
    assert len(sent) == 2


async def test_a_run_that_finishes_within_the_grace_period_completes(
    app: FastAPI, client: httpx.AsyncClient, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    script.append(Reply(text="just in time", hang_seconds=0.5))
    assistant_id, thread_id = await _setup(client)
    run = await _start(client, thread_id, assistant_id)
    await _asked(sent, 1)
    started = time.monotonic()
    await app.state.executor.stop(grace=10)
    assert time.monotonic() - started < 5  # when the run was done, not when the grace ran out
    done = (await client.get(f"/v1/threads/{thread_id}/runs/{run['id']}")).json()
    assert done["status"] == "completed"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`assistants-server serve` as an operator runs it, on its embedded SQLite database."""

    def __init__(self, data_dir: Path, backend_url: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
        env.update(ASSISTANTS_DATA_DIR=str(data_dir), ASSISTANTS_BACKEND_BASE_URL=backend_url,
                   ASSISTANTS_SHUTDOWN_GRACE_SECONDS="1", ASSISTANTS_LOG_LEVEL="info")
        self.process = subprocess.Popen([EXE, "serve", "--port", str(self.port)], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url + "/health")
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline and self.process.poll() is None, \
                    self.output()
                time.sleep(0.1)

    def output(self) -> str:
        self.process.kill()
        return self.process.communicate(timeout=10)[0]

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        return self.process.communicate(timeout=30)[0]


def _frames(response: httpx.Response) -> Iterator[tuple[int | None, str]]:
    """(id, event) of each SSE frame, as a resuming client reads them."""
    seq: int | None = None
    name = ""
    for line in response.iter_lines():
        if line.startswith("id: "):
            seq = int(line[4:])
        elif line.startswith("event: "):
            name = line[7:]
        elif line == "" and name:
            yield seq, name
            seq, name = None, ""


def test_sigterm_mid_run_then_a_restart_finishes_it_and_the_stream_resumes(
    tmp_path: Path, backend: LiveServer, script: list[Any]
) -> None:
    script.extend([Reply(text="never heard", hang_seconds=30), Reply(text="Hello again")])
    server = Server(tmp_path / "data", backend.url + "/v1")
    try:
        with httpx.Client(base_url=server.url + "/v1", headers=HEADERS, timeout=30) as http:
            assistant = http.post("/assistants", json={"model": "fake-model"}).json()
            thread = http.post("/threads", json={
                "messages": [{"role": "user", "content": "hello"}]}).json()
            seen: list[tuple[int | None, str]] = []
            with http.stream("POST", f"/threads/{thread['id']}/runs", json={
                    "assistant_id": assistant["id"], "stream": True}) as response:
                for frame in _frames(response):
                    seen.append(frame)
                    if frame[1] == "thread.run.in_progress":
                        server.process.send_signal(signal.SIGTERM)
    finally:
        output = server.output() if server.process.poll() is None else server.stop()
    names = [name for _, name in seen]
    assert "thread.run.in_progress" in names
    assert "done" not in names and "thread.run.cancelled" not in names  # cut, to be resumed
    assert "handed back 1 run" in output, output
    last_id = max(seq for seq, _ in seen if seq is not None)

    again = Server(tmp_path / "data", backend.url + "/v1")
    try:
        with httpx.Client(base_url=again.url + "/v1", headers=HEADERS, timeout=30) as http:
            runs = http.get(f"/threads/{thread['id']}/runs").json()["data"]
            run_id = runs[0]["id"]
            with http.stream("GET", f"/threads/{thread['id']}/runs/{run_id}/events",
                             headers={"Last-Event-ID": str(last_id)}) as response:
                resumed = list(_frames(response))
            run = http.get(f"/threads/{thread['id']}/runs/{run_id}").json()
            messages = http.get(f"/threads/{thread['id']}/messages").json()["data"]
    finally:
        again.stop()
    assert [name for _, name in resumed][-2:] == ["thread.run.completed", "done"]
    assert all(seq > last_id for seq, _ in resumed if seq is not None)  # never back to 1
    assert run["status"] == "completed"
    assert messages[0]["content"][0]["text"]["value"] == "Hello again"
