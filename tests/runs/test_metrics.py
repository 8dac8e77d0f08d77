"""`GET /metrics` in Prometheus' format: requests by route template and status, runs by status
and model once committed, the gauges read when scraped; with several processes, whichever
answers counts them all."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.runs.test_run_rules import _setup, _start, _wait
from tests.test_cli import EXE, _free_port, _wait_for


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in an exposition (0 when absent), read with Prometheus' own text
    parser (prometheus-client's), so an exposition it could not parse fails the test."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0


async def test_requests_and_runs_are_counted(
    client: httpx.AsyncClient, script: list[Any], app: Any
) -> None:
    before = (await client.get("/metrics")).text
    assistant_id, thread_id = await _setup(client)
    run = await _start(client, thread_id, assistant_id)
    await _wait(client, thread_id, run["id"], "completed")
    await client.get("/v1/threads/thread_missing")  # a 404, by its route, not its id
    response = await client.get("/metrics")  # no key, like /health
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    route = "/v1/threads/{thread_id}"

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("assistants_http_requests_total", method="GET", route=route, status="404") == 1
    assert "thread_missing" not in after
    assert grew("assistants_runs_created_total", model="fake-model") == 1
    assert grew("assistants_runs_ended_total", status="completed", model="fake-model") == 1
    assert grew("assistants_run_duration_seconds_count", status="completed") == 1
    assert grew("assistants_backend_first_token_seconds_count", model="fake-model") == 1
    assert sample(after, "assistants_runs_queued") == 0
    assert "process_cpu_seconds_total" in after  # the process's own


def test_several_processes_are_counted_by_whichever_answers(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
    env.update(ASSISTANTS_DATA_DIR=str(tmp_path), ASSISTANTS_WORKERS="2")
    server = subprocess.Popen([EXE, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base + "/health")
        time.sleep(1)  # the second process may still be starting
        for _ in range(30):  # a connection each: the kernel spreads them over both
            with httpx.Client() as http:
                assert http.get(base + "/v1/models").status_code == 200
        for _ in range(4):  # each scrape, whoever answers it, counts all 30
            with httpx.Client() as http:
                text = http.get(base + "/metrics").text
            assert sample(text, "assistants_http_requests_total", method="GET",
                          route="/v1/models", status="200") == 30
    finally:
        server.terminate()
        server.wait(timeout=30)
