"""Process roles: API processes that never drive a run and a worker that serves no API, on one
database and one Redis. A run created through the first API process is driven by the worker,
streamed through the first and resumed through the second."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from assistants_server.config import Settings
from tests.runs.conftest import REDIS_URL
from tests.runs.test_process_death import HEADERS, _serve
from tests.test_cli import _free_port


def _frames(response: httpx.Response) -> Iterator[tuple[int | None, str, str]]:
    """(id, event, data) of each SSE frame."""
    seq: int | None = None
    name = data = ""
    for line in response.iter_lines():
        if line.startswith("id: "):
            seq = int(line[4:])
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and name:
            yield seq, name, data
            seq, name, data = None, "", ""


@pytest.fixture
def database() -> str:
    return "postgres"  # processes of several roles share a server database


def test_api_processes_stream_what_a_worker_drives(settings: Settings, prefix: str) -> None:
    redis = {"redis_url": REDIS_URL, "redis_prefix": prefix}
    ports = [_free_port() for _ in range(3)]
    processes = [_serve(settings, ports[0], role="api", **redis),
                 _serve(settings, ports[1], role="api", **redis),
                 _serve(settings, ports[2], role="worker", **redis)]
    first, second, worker = (f"http://127.0.0.1:{port}" for port in ports)
    try:
        with httpx.Client(headers=HEADERS, timeout=30) as http:
            assistant = http.post(first + "/v1/assistants", json={"model": "fake-model"}).json()
            with http.stream("POST", first + "/v1/threads/runs", json={
                    "assistant_id": assistant["id"], "stream": True,
                    "thread": {"messages": [{"role": "user", "content": "hi"}]}}) as response:
                streamed = list(_frames(response))
            assert [name for _, name, _ in streamed][-2:] == ["thread.run.completed", "done"]
            run: dict[str, Any] = next(json.loads(data) for _, name, data in streamed
                                       if name == "thread.run.created")
            seen = next(seq for seq, name, _ in streamed if name == "thread.run.in_progress")
            assert seen is not None
            with http.stream("GET", f"{second}/v1/threads/{run['thread_id']}/runs/{run['id']}"
                             "/events", headers={"Last-Event-ID": str(seen)}) as response:
                resumed = [(seq, name) for seq, name, _ in _frames(response)]
            assert resumed == [(seq, name) for seq, name, _ in streamed
                               if seq is None or seq > seen]
            assert http.get(worker + "/ready").status_code == 200
            assert http.get(worker + "/v1/assistants").status_code == 404  # no API there
            worker_metrics = http.get(worker + "/metrics").text
            api_metrics = http.get(first + "/metrics").text
        completed = 'assistants_runs_ended_total{model="fake-model",status="completed"} 1.0'
        assert completed in worker_metrics  # the worker drove it
        assert "assistants_runs_ended_total{" not in api_metrics  # the API process did not
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def test_an_api_process_without_redis_says_what_it_needs() -> None:
    with pytest.raises(ValueError, match="ASSISTANTS_REDIS_URL"):
        Settings(role="api")
