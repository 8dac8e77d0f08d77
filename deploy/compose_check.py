"""Bring docker-compose.yml up on a real Docker engine, drive it as users would, break it, and
tear it down; then the image alone (SQLite, one container). Run from the repository:

    .venv/bin/python deploy/compose_check.py [--local-images] [--keep]

`--local-images` first builds the stand-in base images (deploy/local-images/build.sh) for a
machine that reaches no image registry. A fake model backend (tests/fake_backend.py) runs on
this machine, reached from the containers as host.docker.internal; each answer takes
FAKE_HANG_SECONDS (1.5 s) so that a worker can be killed mid-run.

What it checks, with its timings printed as it goes:
- the compose file builds and comes up with 2 API processes and 2 workers, all healthy;
- the README's SDK examples run unchanged against the first API process;
- a run streamed through one API process resumes through the other (`Last-Event-ID`);
- a worker killed (SIGKILL) while driving a run: the run is taken over by the other worker and
  completes, answered once;
- the image alone, on its embedded SQLite, answers a run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.fake_backend import Reply, create_fake_backend  # noqa: E402
from tests.runs.test_roles import _frames as frames  # noqa: E402

PROJECT = "assistants-check"
KEY = "anything"  # the README's examples send it
API_PORTS = (8000, 8001)
SINGLE_PORT = 8010
FAKE_PORT = 8712
HANG_SECONDS = float(os.environ.get("FAKE_HANG_SECONDS", "1.5"))
LOCAL_IMAGES = {"PYTHON_IMAGE": "assistants-local/python:3.11",
                "REDIS_IMAGE": "assistants-local/redis:7",
                "POSTGRES_IMAGE": "assistants-local/postgres:15"}
HEADERS = {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v2"}
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f} s] {message}", flush=True)


def compose(*args: str, env: dict[str, str], check: bool = True) -> str:
    done = subprocess.run(["docker-compose", "-p", PROJECT, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"docker-compose {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def wait(what: str, ready: Callable[[], bool], seconds: float = 120) -> float:
    started = time.monotonic()
    while not ready():
        if time.monotonic() - started > seconds:
            raise SystemExit(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(0.5)
    took = time.monotonic() - started
    say(f"{what}: {took:.1f} s")
    return took


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).json().get("status") == "ready"
    except (httpx.HTTPError, ValueError):
        return False


@contextmanager
def fake_backend() -> Iterator[Any]:
    app = create_fake_backend(["gpt-4o"], default=Reply(text="Hello!",
                                                        hang_seconds=HANG_SECONDS))
    server = uvicorn.Server(uvicorn.Config(app, host="0.0.0.0", port=FAKE_PORT,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait("the fake model backend", lambda: server.started, 10)
    try:
        yield app
    finally:
        server.should_exit = True
        thread.join(10)


def readme_examples(base_url: str) -> None:
    """The README's SDK section, block by block, each after the first (which makes the client,
    an assistant and a thread), as a reader pastes them."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use it from the SDK", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    for n, block in enumerate(blocks):
        code = block if n == 0 else blocks[0] + "\n" + block
        code = code.replace("http://127.0.0.1:8000/v1", base_url)
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=300)
        if done.returncode != 0:
            raise SystemExit(f"README SDK block {n} failed:\n{done.stdout}{done.stderr}")
        last = done.stdout.strip().splitlines()[-1:] or [""]
        say(f"README SDK block {n}: ok in {time.monotonic() - started:.1f} s ({last[0][:70]})")


def resume_elsewhere(http: httpx.Client, assistant_id: str) -> None:
    first, second = (f"http://127.0.0.1:{port}/v1" for port in API_PORTS)
    with http.stream("POST", first + "/threads/runs", json={
            "assistant_id": assistant_id, "stream": True,
            "thread": {"messages": [{"role": "user", "content": "hi"}]}}) as response:
        streamed = list(frames(response))
    run = next(json.loads(data) for _, name, data in streamed if name == "thread.run.created")
    seen = next(seq for seq, name, _ in streamed if name == "thread.run.in_progress")
    assert seen is not None
    with http.stream("GET", f"{second}/threads/{run['thread_id']}/runs/{run['id']}/events",
                     headers={"Last-Event-ID": str(seen)}) as response:
        resumed = [(seq, name) for seq, name, _ in frames(response)]
    expected = [(seq, name) for seq, name, _ in streamed if seq is None or seq > seen]
    assert resumed == expected, (resumed, expected)
    say(f"streamed through :{API_PORTS[0]} ({len(streamed)} events), resumed after event "
        f"{seen} through :{API_PORTS[1]}: the same {len(resumed)} events")


def docker_logs(container: str) -> str:
    done = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
    return done.stdout + done.stderr


def psql(sql: str) -> str:
    return docker("exec", f"{PROJECT}_postgres_1", "psql", "-U", "assistants", "-d",
                  "assistants", "-tAc", sql)


def kill_a_worker_mid_run(http: httpx.Client, assistant_id: str) -> None:
    base = f"http://127.0.0.1:{API_PORTS[0]}/v1"
    run = http.post(base + "/threads/runs", json={
        "assistant_id": assistant_id,
        "thread": {"messages": [{"role": "user", "content": "survive this"}]}}).json()
    wait("the run driven by a worker", lambda: psql(
        f"select status from runs where id = '{run['id']}'") == "in_progress", 30)
    owner = psql(f"select lease_owner from runs where id = '{run['id']}'")
    container = next(name for name in docker("ps", "--format", "{{.Names}}").split()
                     if name.startswith(f"{PROJECT}_worker_")
                     and docker("inspect", "-f", "{{.Config.Hostname}}", name)
                     == owner.split(":")[0])
    docker("kill", "--signal", "KILL", container)
    say(f"killed {container} (SIGKILL) while it drove {run['id']}")
    url = f"{base}/threads/{run['thread_id']}/runs/{run['id']}"
    wait("the run taken over and completed",
         lambda: http.get(url).json()["status"] in ("completed", "failed", "expired"), 120)
    final = http.get(url).json()
    messages = http.get(f"{base}/threads/{run['thread_id']}/messages").json()["data"]
    answered = [m for m in messages if m["role"] == "assistant"]
    assert final["status"] == "completed", final
    assert len(answered) == 1, messages
    took_over = [name for name in docker("ps", "--format", "{{.Names}}").split()
                 if name.startswith(f"{PROJECT}_worker_") and name != container
                 and run["id"] in docker_logs(name)]
    say(f"run {final['status']}, answered once; taken over by {', '.join(took_over)}")


def single_container(env: dict[str, str]) -> None:
    name = f"{PROJECT}-single"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    docker("run", "-d", "--name", name, "-p", f"{SINGLE_PORT}:8000",
           "--add-host", "host.docker.internal:host-gateway",
           "-e", f"ASSISTANTS_API_KEYS={KEY}",
           "-e", f"ASSISTANTS_BACKEND_BASE_URL={env['ASSISTANTS_BACKEND_BASE_URL']}",
           "assistants-server:latest")
    try:
        wait("the image alone healthy (SQLite)", lambda: docker(
            "inspect", "-f", "{{.State.Health.Status}}", name) == "healthy", 120)
        base = f"http://127.0.0.1:{SINGLE_PORT}/v1"
        with httpx.Client(headers=HEADERS, timeout=60) as http:
            assistant = http.post(base + "/assistants", json={"model": "gpt-4o"}).json()
            run = http.post(base + "/threads/runs", json={
                "assistant_id": assistant["id"],
                "thread": {"messages": [{"role": "user", "content": "hi"}]}}).json()
            url = f"{base}/threads/{run['thread_id']}/runs/{run['id']}"
            wait("a run on the image alone", lambda: http.get(url).json()["status"]
                 == "completed", 60)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--local-images", action="store_true",
                        help="build and use the stand-in base images (no registry needed)")
    parser.add_argument("--keep", action="store_true", help="leave the services running")
    args = parser.parse_args()
    env = {**os.environ, "ASSISTANTS_API_KEYS": KEY,
           "ASSISTANTS_BACKEND_BASE_URL": f"http://host.docker.internal:{FAKE_PORT}/v1",
           "API_PORTS": f"{API_PORTS[0]}-{API_PORTS[1]}"}
    if args.local_images:
        started = time.monotonic()
        subprocess.run([str(ROOT / "deploy/local-images/build.sh")], check=True,
                       capture_output=True)
        say(f"stand-in base images built: {time.monotonic() - started:.1f} s")
        env.update(LOCAL_IMAGES)
    with fake_backend():
        started = time.monotonic()
        compose("build", env=env)
        say(f"image built: {time.monotonic() - started:.1f} s")
        compose("up", "-d", "--scale", "api=2", "--scale", "worker=2", env=env)
        try:
            for port in API_PORTS:
                wait(f"API process on :{port} ready",
                     lambda port=port: answers(f"http://127.0.0.1:{port}/ready"))
            wait("both workers healthy", lambda: compose("ps", env=env).count("(healthy)") == 6)
            readme_examples(f"http://127.0.0.1:{API_PORTS[0]}/v1")
            with httpx.Client(headers=HEADERS, timeout=60) as http:
                base = f"http://127.0.0.1:{API_PORTS[0]}/v1"
                assistant = http.post(base + "/assistants", json={"model": "gpt-4o"}).json()
                resume_elsewhere(http, assistant["id"])
                kill_a_worker_mid_run(http, assistant["id"])
        finally:
            if not args.keep:
                compose("down", "-v", "--remove-orphans", env=env, check=False)
                say("compose services and volumes removed")
        single_container(env)
    say("all checks passed")


if __name__ == "__main__":
    main()
