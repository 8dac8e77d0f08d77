"""Errors can be traced: every log line of a request carries its request id (the one a 500
tells users to quote), a run's lines carry the run and thread ids, and a backend's failure is
logged with what it answered; as text or, with ASSISTANTS_LOG_FORMAT=json, one object a line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistants_server.app import create_app
from tests.fake_backend import Reply
from tests.runs.test_run_rules import _setup, _start, _wait
from tests.test_cli import EXE, _free_port, _wait_for


async def test_a_500_is_logged_with_the_request_id_it_tells_users_to_quote(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)

    @app.get("/v1/boom")
    async def boom() -> None:
        logging.getLogger("assistants_server.test").warning("about to fail")
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://testserver") as http:
        response = await http.get("/v1/boom")
    request_id = response.headers["x-request-id"]
    assert request_id in response.json()["error"]["message"]
    mine = [r for r in caplog.records if getattr(r, "request_id", None) == request_id]
    assert {r.getMessage() for r in mine} >= {"about to fail"}
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in mine)  # the traceback


async def test_a_backend_failure_is_logged_with_the_run_and_what_it_answered(
    client: httpx.AsyncClient, script: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    script.extend([Reply(status=500)] * 4)  # every retry fails too
    assistant_id, thread_id = await _setup(client)
    run = await _start(client, thread_id, assistant_id)
    await _wait(client, thread_id, run["id"], "failed")
    lines = [r for r in caplog.records if getattr(r, "run_id", None) == run["id"]]
    assert lines and all(r.thread_id == thread_id for r in lines)
    assert any("500" in r.getMessage() for r in lines), [r.getMessage() for r in lines]


def test_json_logs_carry_the_ids_as_fields(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
    env.update(ASSISTANTS_DATA_DIR=str(tmp_path), ASSISTANTS_LOG_FORMAT="json",
               ASSISTANTS_ACCESS_LOG="true")
    server = subprocess.Popen([EXE, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/health")
        response = httpx.get(f"http://127.0.0.1:{port}/v1/threads/thread_missing",
                             headers={"OpenAI-Beta": "assistants=v2"})
        assert response.status_code == 404
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    access = [r for r in records if r.get("request_id") == response.headers["x-request-id"]]
    assert access and "thread_missing" in access[0]["message"]


class TestAnUnreachableBackend:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"backend_base_url": "http://127.0.0.1:9/v1"}  # nothing listens there

    async def test_its_address_is_logged_and_never_shown_to_the_client(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        assistant_id, thread_id = await _setup(client)
        run = await _start(client, thread_id, assistant_id)
        failed = await _wait(client, thread_id, run["id"], "failed")
        assert "could not be reached" in failed["last_error"]["message"]
        assert "127.0.0.1:9" not in failed["last_error"]["message"]
        assert any("127.0.0.1:9" in r.getMessage() and getattr(r, "run_id", None) == run["id"]
                   for r in caplog.records)
