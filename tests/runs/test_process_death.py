"""A server process killed mid-run: after a restart the run is failed, never left in progress,
and no half-written answer is left in the thread."""

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


def test_killed_process_leaves_a_failed_run_and_no_partial_message(
    settings: Settings, script: list[Any]
) -> None:
    script.append(Reply(text="half an answer", stall_seconds=30))
    port = _free_port()
    base = f"http://127.0.0.1:{port}/v1"
    first = _serve(settings, port)
    try:
        assistant = httpx.post(f"{base}/assistants", json={"model": "fake-model"},
                               headers=HEADERS).json()
        thread = httpx.post(f"{base}/threads", json={"messages": [
            {"role": "user", "content": "hi"}]}, headers=HEADERS).json()
        run = httpx.post(f"{base}/threads/{thread['id']}/runs", headers=HEADERS,
                         json={"assistant_id": assistant["id"]}).json()
        deadline = time.monotonic() + 10
        while _run_status(base, thread["id"], run["id"])["status"] != "in_progress":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    second = _serve(settings, port)
    try:
        deadline = time.monotonic() + 15
        while (status := _run_status(base, thread["id"], run["id"]))["status"] == "in_progress":
            assert time.monotonic() < deadline, "the run stayed in_progress after a restart"
            time.sleep(0.1)
        assert status["status"] == "failed"
        assert status["last_error"]["code"] == "server_error"
        messages = httpx.get(f"{base}/threads/{thread['id']}/messages", headers=HEADERS).json()
        assert [m["role"] for m in messages["data"]] == ["user"]
    finally:
        second.terminate()
        second.wait(timeout=20)
