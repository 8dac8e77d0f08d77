"""A server process killed mid-run: after a restart a run nobody streamed is driven again and
answered once; a streamed one (its tokens reached a client) is failed; none is left in
progress, and no half-written answer is left in the thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from assistants_server.config import Settings
from tests.fake_backend import Reply
from tests.test_cli import _free_port, _wait_for

EXE = str(Path(sys.executable).with_name("assistants-server"))
HEADERS = {"OpenAI-Beta": "assistants=v2", "Authorization": "Bearer any"}


def _serve(settings: Settings, port: int, **extra: str) -> subprocess.Popen[str]:
    """`assistants-server serve` on `settings`' database; `extra`: more ASSISTANTS_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
    env.update({
        "ASSISTANTS_DATA_DIR": str(settings.data_dir),
        "ASSISTANTS_DATABASE_URL": settings.resolved_database_url,
        "ASSISTANTS_BACKEND_BASE_URL": str(settings.backend_base_url),
        "ASSISTANTS_LEASE_SECONDS": "1.5",
        **{f"ASSISTANTS_{name.upper()}": value for name, value in extra.items()},
    })
    if settings.database_schema:
        env["ASSISTANTS_DATABASE_SCHEMA"] = settings.database_schema
    process = subprocess.Popen([EXE, "serve", "--port", str(port)], env=env, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(f"http://127.0.0.1:{port}/health")
    return process


def _run_status(base: str, thread_id: str, run_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{base}/threads/{thread_id}/runs/{run_id}", headers=HEADERS).json())


def _killed_mid_run(settings: Settings, port: int, *, stream: bool) -> tuple[str, str]:
    """A run whose model is mid-answer when its process is killed (-9): thread and run ids."""
    base = f"http://127.0.0.1:{port}/v1"
    first = _serve(settings, port)
    try:
        assistant = httpx.post(f"{base}/assistants", json={"model": "fake-model"},
                               headers=HEADERS).json()
        thread = httpx.post(f"{base}/threads", json={"messages": [
            {"role": "user", "content": "hi"}]}, headers=HEADERS).json()
        body = {"assistant_id": assistant["id"], "stream": stream}
        if stream:
            run_id = ""
            with httpx.stream("POST", f"{base}/threads/{thread['id']}/runs", json=body,
                              headers=HEADERS, timeout=30) as response:
                for line in response.iter_lines():
                    if not run_id and line.startswith('data: {"id":"run_'):
                        run_id = line.split('"id":"')[1].split('"')[0]
                    if line == "event: thread.message.delta":  # a token reached the client
                        break
            return thread["id"], run_id
        run = httpx.post(f"{base}/threads/{thread['id']}/runs", json=body,
                         headers=HEADERS).json()
        deadline = time.monotonic() + 10
        while _run_status(base, thread["id"], run["id"])["status"] != "in_progress":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # the model is mid-answer
        return thread["id"], run["id"]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()


def _ended(base: str, thread_id: str, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while (status := _run_status(base, thread_id, run_id))["status"] in (
            "queued", "in_progress"):
        assert time.monotonic() < deadline, "the run stayed active after a restart"
        time.sleep(0.1)
    return status


def test_a_killed_streamed_run_is_failed_with_no_partial_message(
    settings: Settings, script: list[Any]
) -> None:
    """Its tokens reached a client: driving it again would show them a second answer."""
    script.append(Reply(text="half an answer", stall_seconds=30))
    port = _free_port()
    base = f"http://127.0.0.1:{port}/v1"
    thread_id, run_id = _killed_mid_run(settings, port, stream=True)
    second = _serve(settings, port)
    try:
        status = _ended(base, thread_id, run_id)
        assert status["status"] == "failed"
        assert status["last_error"]["code"] == "server_error"
        messages = httpx.get(f"{base}/threads/{thread_id}/messages", headers=HEADERS).json()
        assert [m["role"] for m in messages["data"]] == ["user"]
    finally:
        second.terminate()
        second.wait(timeout=20)


def test_a_killed_polled_run_is_driven_again_by_the_next_process(
    settings: Settings, script: list[Any]
) -> None:
    """No token of it reached anyone: it is queued again and answered once, not failed."""
    script.extend([Reply(text="half an answer", stall_seconds=30), Reply(text="Answered.")])
    port = _free_port()
    base = f"http://127.0.0.1:{port}/v1"
    thread_id, run_id = _killed_mid_run(settings, port, stream=False)
    second = _serve(settings, port)
    try:
        status = _ended(base, thread_id, run_id)
        assert status["status"] == "completed", status
        messages = httpx.get(f"{base}/threads/{thread_id}/messages", headers=HEADERS).json()
        assert [(m["role"], m["content"][0]["text"]["value"]) for m in messages["data"]] == [
            ("assistant", "Answered."), ("user", "hi")]
    finally:
        second.terminate()
        second.wait(timeout=20)
