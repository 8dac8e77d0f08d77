"""The event stream's own guarantees, read as raw SSE frames: `id:` on every frame, resuming
with Last-Event-ID after a dropped connection, keep-alive comments, a disconnect that leaves
the run running, and the wrapped `error` event of a fault mid-stream (in-process, with the SDK)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from assistants_server.backends.chat import ChatEvent, ChatRequest, TextDelta
from tests.conftest import BETA, LiveServer
from tests.fake_backend import Reply


@pytest.fixture
def settings_overrides(backend: LiveServer) -> dict[str, Any]:
    return {"backend_base_url": backend.url + "/v1", "lease_seconds": 3.0,
            "stream_keepalive_seconds": 0.2}


Frame = dict[str, str]


def _frames(lines: Iterator[str]) -> Iterator[Frame]:
    """SSE frames as dicts (id, event, data, or comment), per the parser rules of WIRE.md §7.1."""
    frame: Frame = {}
    for line in lines:
        if not line:
            if frame:
                yield frame
            frame = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            key, _, value = line.partition(":")
            frame[key] = value[1:] if value.startswith(" ") else value


def _start(http: httpx.Client) -> tuple[str, str]:
    assistant = http.post("/assistants", json={"model": "fake-model"}).json()
    thread = http.post("/threads", json={
        "messages": [{"role": "user", "content": "Tell me"}]}).json()
    return assistant["id"], thread["id"]


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url + "/v1", timeout=30,
                      headers={**BETA, "Authorization": "Bearer sk-test"}) as client:
        yield client


def _bus(live_server: LiveServer) -> Any:
    return live_server.server.config.app.state.bus


def test_resume_after_a_dropped_connection_gets_the_rest(
    live_server: LiveServer, http: httpx.Client, script: list[Any]
) -> None:
    script.append(Reply(text="One two three four five six", chunk_chars=4, stall_seconds=1.0))
    assistant_id, thread_id = _start(http)
    first: list[Frame] = []
    with http.stream("POST", f"/threads/{thread_id}/runs",
                     json={"assistant_id": assistant_id, "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"]
        for frame in _frames(response.iter_lines()):
            if "event" in frame:
                first.append(frame)
            if frame.get("event") == "thread.message.delta":
                break  # the connection drops here
    run_id = first[0]["data"].split('"id":"')[1].split('"')[0]
    last_id = first[-1]["id"]
    rest: list[Frame] = []
    with http.stream("GET", f"/threads/{thread_id}/runs/{run_id}/events",
                     headers={"Last-Event-ID": last_id}) as response:
        assert response.status_code == 200
        rest = [f for f in _frames(response.iter_lines()) if "event" in f]
    frames = first + rest
    assert [int(f["id"]) for f in frames] == list(range(1, len(frames) + 1))
    names = [f["event"] for f in frames]
    assert names[-2:] == ["thread.run.completed", "done"]
    assert names.count("thread.message.created") == 1
    text = "".join(f["data"].split('"value":"')[1].split('"')[0] for f in frames
                   if f["event"] == "thread.message.delta")
    assert text == "One two three four five six"
    # The dropped subscriber was released and the run went on without it.
    assert http.get(f"/threads/{thread_id}/runs/{run_id}").json()["status"] == "completed"
    deadline = time.time() + 5
    while _bus(live_server).subscribers(run_id) and time.time() < deadline:
        time.sleep(0.05)
    assert _bus(live_server).subscribers(run_id) == 0

    # Reconnecting after the end gets just the end of the stream.
    with http.stream("GET", f"/threads/{thread_id}/runs/{run_id}/events",
                     headers={"Last-Event-ID": frames[-1]["id"]}) as response:
        assert [f.get("event") for f in _frames(response.iter_lines())] == ["done"]


def test_idle_stream_gets_keepalive_comments(http: httpx.Client, script: list[Any]) -> None:
    script.append(Reply(text="late", hang_seconds=1.0))
    assistant_id, thread_id = _start(http)
    with http.stream("POST", f"/threads/{thread_id}/runs",
                     json={"assistant_id": assistant_id, "stream": True}) as response:
        frames = list(_frames(response.iter_lines()))
    pings = [i for i, f in enumerate(frames) if "comment" in f]
    in_progress = next(i for i, f in enumerate(frames)
                       if f.get("event") == "thread.run.in_progress")
    first_delta = next(i for i, f in enumerate(frames)
                       if f.get("event") == "thread.message.delta")
    assert any(in_progress < i < first_delta for i in pings)
    assert (frames[-1]["event"], frames[-1]["data"]) == ("done", "[DONE]")


def test_the_sdk_reads_a_stream_with_keepalives_between_events(
    sdk: Any, script: list[Any]
) -> None:
    """The SDK's decoder keeps the last `id:` and dispatches an event at any blank line, so a
    keep-alive must be a lone comment line, never a comment followed by a blank line."""
    script.append(Reply(text="late answer", hang_seconds=1.0, chunk_chars=3, stall_seconds=0.5))
    assistant = sdk.beta.assistants.create(model="fake-model")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Wait."}])
    with sdk.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        events = [event.event for event in stream]
        final = stream.get_final_messages()
    assert events[-1] == "thread.run.completed"
    assert final[0].content[0].text.value == "late answer"


def test_subscribing_to_a_run_nobody_streamed(http: httpx.Client, script: list[Any]) -> None:
    script.append(Reply(text="hi"))
    assistant_id, thread_id = _start(http)
    run = http.post(f"/threads/{thread_id}/runs", json={"assistant_id": assistant_id}).json()
    deadline = time.time() + 10
    while http.get(f"/threads/{thread_id}/runs/{run['id']}").json()["status"] != "completed":
        assert time.time() < deadline
        time.sleep(0.05)
    with http.stream("GET", f"/threads/{thread_id}/runs/{run['id']}/events") as response:
        frames = [f for f in _frames(response.iter_lines()) if "event" in f]
    assert [f["event"] for f in frames] == ["thread.run.completed", "done"]
    bad = http.get(f"/threads/{thread_id}/runs/{run['id']}/events",
                   headers={"Last-Event-ID": "abc"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "Last-Event-ID"
    missing = http.get(f"/threads/{thread_id}/runs/run_missing/events")
    assert missing.status_code == 404


class _FaultyBackend:
    """A model connection whose code breaks after the first words: a fault of the server's
    own, not an answer from the model."""

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        yield TextDelta("Partial")
        raise RuntimeError("a bug in the relay")


async def test_a_fault_mid_stream_sends_the_wrapped_error_event(app: FastAPI) -> None:
    import openai

    app.state.executor.backend = _FaultyBackend()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        sdk = openai.AsyncOpenAI(base_url="http://testserver/v1", api_key="sk-test",
                                 http_client=http, max_retries=0)
        assistant = await sdk.beta.assistants.create(model="fake-model")
        thread = await sdk.beta.threads.create(messages=[{"role": "user", "content": "x"}])
        seen: list[str] = []
        with pytest.raises(openai.APIError) as caught:
            stream = await sdk.beta.threads.runs.create(
                thread_id=thread.id, assistant_id=assistant.id, stream=True)
            async for event in stream:
                seen.append(event.event)
        assert seen[-1] == "thread.message.delta"
        assert "server had an error" in caught.value.message
        runs = await sdk.beta.threads.runs.list(thread_id=thread.id)
        run = runs.data[0]
        assert run.status == "failed" and run.last_error.code == "server_error"
        raw = await http.get(f"/v1/threads/{thread.id}/runs/{run.id}/events",
                             headers={**BETA, "Last-Event-ID": "0"})
    names = [line[7:] for line in raw.text.splitlines() if line.startswith("event: ")]
    assert names[names.index("error"):] == [
        "error", "thread.message.incomplete", "thread.run.step.failed", "thread.run.failed",
        "done"]


async def test_a_process_without_executor_refuses_to_stream(app: FastAPI) -> None:
    app.state.executor = None  # an API-only process (ASSISTANTS_EXECUTOR_ENABLED=false)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver/v1",
                                 headers=BETA) as http:
        assistant = (await http.post("/assistants", json={"model": "fake-model"})).json()
        thread = (await http.post("/threads", json={})).json()
        refused = await http.post(f"/threads/{thread['id']}/runs",
                                  json={"assistant_id": assistant["id"], "stream": True})
        assert refused.status_code == 400
        assert refused.json()["error"]["param"] == "stream"
        assert "ASSISTANTS_EXECUTOR_ENABLED" in refused.json()["error"]["message"]
        queued = await http.post(f"/threads/{thread['id']}/runs",
                                 json={"assistant_id": assistant["id"]})
        assert queued.json()["status"] == "queued"


async def test_a_run_another_process_drives_is_shown_not_followed(app: FastAPI) -> None:
    """Without Redis, a process sees only the events of the runs it drives."""
    from sqlalchemy import update

    from assistants_server.db.models import RunRow

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver/v1",
                                 headers=BETA) as http:
        assistant = (await http.post("/assistants", json={"model": "fake-model"})).json()
        thread = (await http.post("/threads", json={})).json()
        app.state.executor.concurrency = 0  # no room here: the run waits for any process
        run = (await http.post(f"/threads/{thread['id']}/runs",
                               json={"assistant_id": assistant["id"]})).json()
        async with app.state.sessionmaker() as session:  # ...and another process claimed it
            await session.execute(update(RunRow).where(RunRow.id == run["id"]).values(
                lease_owner="elsewhere:1", lease_expires_at=time.time() + 60))
            await session.commit()
        events = await http.get(f"/threads/{thread['id']}/runs/{run['id']}/events")
    names = [line[7:] for line in events.text.splitlines() if line.startswith("event: ")]
    assert names == ["thread.run.queued", "done"]


def test_events_without_a_position_follow_the_latest_stream(
    http: httpx.Client, script: list[Any]
) -> None:
    """Streamed to requires_action, continued without streaming: the events endpoint gives
    the continuation, not the first stream again."""
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    script.append(Reply(tool_calls=[{"id": "call_1", "name": "f", "arguments": "{}"}]))
    script.append(Reply(text="done with f", stall_seconds=0.5))
    assistant = http.post("/assistants", json={"model": "fake-model", "tools": [tool]}).json()
    thread = http.post("/threads", json={"messages": [{"role": "user", "content": "x"}]}).json()
    with http.stream("POST", f"/threads/{thread['id']}/runs",
                     json={"assistant_id": assistant["id"], "stream": True}) as response:
        first = [f for f in _frames(response.iter_lines()) if "event" in f]
    assert [f["event"] for f in first][-2:] == ["thread.run.requires_action", "done"]
    run_id = first[0]["data"].split('"id":"')[1].split('"')[0]
    http.post(f"/threads/{thread['id']}/runs/{run_id}/submit_tool_outputs",
              json={"tool_outputs": [{"tool_call_id": "call_1", "output": "ok"}]})
    with http.stream("GET", f"/threads/{thread['id']}/runs/{run_id}/events") as response:
        rest = [f for f in _frames(response.iter_lines()) if "event" in f]
    assert rest[0]["event"] == "thread.run.step.completed"
    assert int(rest[0]["id"]) == int(first[-1]["id"]) + 1
    assert [f["event"] for f in rest][-2:] == ["thread.run.completed", "done"]


async def test_a_resume_after_the_log_is_gone_gets_the_state_numbered_after_its_id(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Past the retention window (or after a restart of the process that kept the log), a
    client resuming gets where the run stands and `done`, with ids after the one it sent:
    never ids that start at 1 again, which it would take for events it had seen."""
    assistant = (await client.post("/v1/assistants", json={"model": "fake-model"})).json()
    streamed = await client.post("/v1/threads/runs", json={
        "assistant_id": assistant["id"], "stream": True,
        "thread": {"messages": [{"role": "user", "content": "Tell me"}]}})
    frames = list(_frames(iter(streamed.text.splitlines())))
    run = next(f for f in frames if f.get("event") == "thread.run.created")
    run_id = run["data"].split('"id":"')[1].split('"')[0]
    thread_id = run["data"].split('"thread_id":"')[1].split('"')[0]
    last = max(int(f["id"]) for f in frames if "id" in f)
    await app.state.bus.forget(run_id)  # the retention window has passed
    resumed = await client.get(f"/v1/threads/{thread_id}/runs/{run_id}/events",
                               headers={"Last-Event-ID": str(last)})
    events = [f for f in _frames(iter(resumed.text.splitlines())) if "event" in f]
    assert [f["event"] for f in events] == ["thread.run.completed", "done"]
    assert int(events[0]["id"]) == last + 1
