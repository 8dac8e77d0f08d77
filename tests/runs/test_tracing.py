"""ASSISTANTS_OTEL_ENABLED: a request's span, the run it queued as its child (continued from the
context written with the run, as a process that did not serve the request would), and the model
call as the run's child. In a subprocess of its own: OpenTelemetry's tracer provider and the
HTTPX instrumentation are process-wide, and the other tests' processes stay untraced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from assistants_server.config import Settings
from tests.conftest import LiveServer
from tests.fake_backend import Reply

SCENARIO = r'''
import asyncio, json, sys, time
import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

from assistants_server.app import create_app  # noqa: E402

app = create_app()
BETA = {"OpenAI-Beta": "assistants=v2"}


async def main() -> None:
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://server", headers=BETA) as http:
        assistant = (await http.post("/v1/assistants", json={"model": "fake-model"})).json()
        thread = (await http.post("/v1/threads", json={})).json()
        run = (await http.post(f"/v1/threads/{thread['id']}/runs",
                               json={"assistant_id": assistant["id"]})).json()
        deadline = time.monotonic() + 20
        while (await http.get(f"/v1/threads/{thread['id']}/runs/{run['id']}")).json()[
                "status"] != "completed":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await http.get("/health")
    print(json.dumps({"run_id": run["id"], "spans": [{
        "name": s.name, "id": s.context.span_id, "trace": s.context.trace_id,
        "parent": s.parent.span_id if s.parent else None, "kind": s.kind.name,
        "attributes": dict(s.attributes or {})} for s in exporter.get_finished_spans()]}))


asyncio.run(main())
'''


@pytest.fixture
def settings_overrides(backend: LiveServer) -> dict[str, Any]:
    return {"backend_base_url": backend.url + "/v1"}


def test_a_run_is_traced_as_the_child_of_the_request_that_queued_it(
    settings: Settings, backend: LiveServer, script: list[Any],
) -> None:
    script.append(Reply(text="Traced."))
    env = {**os.environ, "ASSISTANTS_OTEL_ENABLED": "true",
           "ASSISTANTS_DATA_DIR": str(settings.data_dir),
           "ASSISTANTS_BACKEND_BASE_URL": backend.url + "/v1"}
    for name in ("database_url", "database_schema"):
        value = getattr(settings, name)
        env.pop(f"ASSISTANTS_{name.upper()}", None)
        if value:
            env[f"ASSISTANTS_{name.upper()}"] = value
    done = subprocess.run([sys.executable, "-c", SCENARIO], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    spans = seen["spans"]
    [request] = [s for s in spans if s["kind"] == "SERVER"
                 and s["name"] == "POST /v1/threads/{thread_id}/runs"]
    [run] = [s for s in spans if s["name"] == "run"]
    assert run["attributes"]["assistants.run_id"] == seen["run_id"]
    assert (run["trace"], run["parent"]) == (request["trace"], request["id"])
    calls = [s for s in spans if s["kind"] == "CLIENT" and s["parent"] == run["id"]]
    assert [c["attributes"].get("url.full", c["attributes"].get("http.url")) for c in calls] == [
        backend.url + "/v1/chat/completions"]
    assert not [s for s in spans if "/health" in s["name"]]  # probes are not traced


def test_tracing_without_the_extra_is_refused_with_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any,
) -> None:
    from assistants_server import tracing
    from assistants_server.cli import main

    monkeypatch.setattr(tracing.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("ASSISTANTS_OTEL_ENABLED", "true")
    monkeypatch.setenv("ASSISTANTS_DATA_DIR", str(tmp_path))
    assert main(["migrate"]) == 2
    assert "pip install 'assistants-server[otel]'" in capsys.readouterr().err
