"""The scaled-out topology on loopback: two API processes and two workers on one PostgreSQL and
one Redis, driven by the official SDK as an application would drive the hosted service:
polling, streaming, function calling with the outputs handed to the other API process,
file_search over a file the workers indexed, a stream resumed on the other API process, and the
worker driving a run killed with SIGKILL mid-answer. Nothing is lost, nothing answered twice."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from assistants_server.config import Settings
from assistants_server.db.migrate import run_blocking
from tests.fake_backend import Reply
from tests.runs.conftest import REDIS_URL
from tests.runs.test_file_search import indexed, search_call, stores
from tests.runs.test_process_death import HEADERS, _serve
from tests.runs.test_roles import _frames
from tests.test_cli import _free_port

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}}}}
REPORT = "Quarterly report.\n\nRevenue was 42 million dollars in the third quarter.\n"


@pytest.fixture
def database() -> str:
    return "postgres"  # processes of several roles share a server database


class Topology:
    def __init__(self, settings: Settings, prefix: str) -> None:
        redis = {"redis_url": REDIS_URL, "redis_prefix": prefix}
        ports = [_free_port() for _ in range(4)]
        self.settings = settings
        self.apis = [f"http://127.0.0.1:{port}/v1" for port in ports[:2]]
        self.processes = [_serve(settings, port, role="api", **redis) for port in ports[:2]]
        self.workers = [_serve(settings, port, role="worker", **redis) for port in ports[2:]]

    def sdk(self, n: int) -> Any:
        import openai

        return openai.OpenAI(base_url=self.apis[n], api_key="any", max_retries=0)

    def lease_owner_pid(self, run_id: str) -> int | None:
        async def read() -> str | None:
            engine = create_async_engine(self.settings.resolved_database_url)
            try:
                async with engine.connect() as connection:
                    return (await connection.execute(text(
                        f'SELECT lease_owner FROM "{self.settings.database_schema}".runs '
                        "WHERE id = :id"), {"id": run_id})).scalar()
            finally:
                await engine.dispose()

        owner = run_blocking(read())
        return int(owner.split(":")[1]) if owner else None

    def stop(self) -> None:
        for process in self.processes + self.workers:
            if process.poll() is None:
                process.terminate()
        for process in self.processes + self.workers:
            process.wait(timeout=30)


@pytest.fixture
def topology(settings: Settings, prefix: str) -> Iterator[Topology]:
    started = Topology(settings, prefix)
    try:
        yield started
    finally:
        started.stop()


def _answers(sdk: Any, thread_id: str) -> list[str]:
    return [m.content[0].text.value for m in sdk.beta.threads.messages.list(thread_id, order="asc")
            if m.role == "assistant"]


def test_the_sdk_through_two_api_processes_and_two_workers(
    topology: Topology, script: list[Any], sent: list[dict[str, Any]], tmp_path: Path,
) -> None:
    first, second = topology.sdk(0), topology.sdk(1)
    assistant = first.beta.assistants.create(model="fake-model", tools=[WEATHER])

    # Polling.
    script.append(Reply(text="Polled answer."))
    thread = first.beta.threads.create(messages=[{"role": "user", "content": "Poll me."}])
    run = first.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    assert _answers(second, thread.id) == ["Polled answer."]

    # Function calling: the run waits, its outputs go through the other API process.
    script += [Reply(tool_calls=[{"id": "call_w", "name": "get_weather",
                                  "arguments": json.dumps({"city": "Paris"})}]),
               Reply(text="Paris is sunny.")]
    thread = first.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    run = first.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    [call] = run.required_action.submit_tool_outputs.tool_calls
    run = second.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id,
                                                           "output": "sunny"}])
    assert run.status == "completed", run.last_error
    assert _answers(first, thread.id) == ["Paris is sunny."]
    assert sent[-1]["messages"][-1] == {"role": "tool", "tool_call_id": "call_w",
                                        "content": "sunny"}

    # file_search over a file a worker indexed, answered with its citation.
    report = tmp_path / "report.txt"
    report.write_text(REPORT)
    with report.open("rb") as handle:
        file = first.files.create(file=handle, purpose="assistants")
    store = indexed(first, stores(first).create(name="Reports", file_ids=[file.id]).id, 30)
    searcher = first.beta.assistants.create(
        model="fake-model", tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    script += [search_call("revenue"), Reply(text="It was 42 million【0:0†report.txt】.")]
    thread = first.beta.threads.create(messages=[{"role": "user", "content": "Revenue?"}])
    run = first.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=searcher.id)
    assert run.status == "completed", run.last_error
    [message] = [m for m in second.beta.threads.messages.list(thread.id) if m.role == "assistant"]
    assert message.content[0].text.annotations[0].file_citation.file_id == file.id

    # Streaming through the first API process, resumed through the second.
    script.append(Reply(text="A streamed answer.", chunk_chars=3))
    thread = first.beta.threads.create(messages=[{"role": "user", "content": "Stream."}])
    with first.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        streamed = "".join(stream.text_deltas)
        run = stream.get_final_run()
    assert streamed == "A streamed answer." and run.status == "completed"
    with httpx.Client(headers=HEADERS, timeout=30) as http, http.stream(
            "GET", f"{topology.apis[1]}/threads/{thread.id}/runs/{run.id}/events",
            headers={"Last-Event-ID": "3"}) as response:
        resumed = [name for seq, name, _ in _frames(response)]
    assert resumed[-2:] == ["thread.run.completed", "done"] and "thread.run.created" not in resumed

    # The worker driving a run is killed mid-answer: the other takes the run over.
    script += [Reply(text="Never seen.", hang_seconds=30), Reply(text="Taken over.")]
    thread = first.beta.threads.create(messages=[{"role": "user", "content": "Survive."}])
    run = first.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    deadline = time.monotonic() + 30
    while (pid := topology.lease_owner_pid(run.id)) is None or len(sent) < 7:
        assert time.monotonic() < deadline, "no worker took the run"
        time.sleep(0.05)
    [killed] = [worker for worker in topology.workers if worker.pid == pid]
    os.kill(pid, signal.SIGKILL)
    killed.wait(timeout=10)
    run = second.beta.threads.runs.poll(run.id, thread_id=thread.id)
    assert run.status == "completed", run.last_error
    assert _answers(second, thread.id) == ["Taken over."]
    survivor = next(w for w in topology.workers if w is not killed)
    assert survivor.poll() is None
    # Every answer was asked for once, but the one the killed worker was waiting for.
    assert len(sent) == 8
    asked = [body["messages"][-1].get("content") for body in sent]
    assert asked.count("Survive.") == 2

