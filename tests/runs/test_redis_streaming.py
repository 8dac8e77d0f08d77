"""Streams shared through Redis (a real one on 127.0.0.1:6379): an API-only process streams
runs that another process drives, either process resumes them, and concurrent publishers of
one run never collide."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest

from assistants_server.app import create_app
from assistants_server.config import Settings
from assistants_server.events.bus import Event
from assistants_server.events.redis_bus import RedisEventBus
from tests.conftest import BETA, LiveServer
from tests.fake_backend import Reply
from tests.runs.conftest import REDIS_URL


@pytest.fixture
def settings_overrides(backend: LiveServer, prefix: str) -> dict[str, Any]:
    return {"backend_base_url": backend.url + "/v1", "lease_seconds": 3.0,
            "redis_url": REDIS_URL, "redis_prefix": prefix}


@pytest.fixture
def servers(settings: Settings) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two processes on one database and one Redis: the first serves the API only, the second
    drives runs."""
    api_only = settings.model_copy(update={"executor_enabled": False})
    with LiveServer(create_app(api_only)) as front, LiveServer(create_app(settings)) as worker:
        yield front, worker


def _sdk(server: LiveServer) -> Any:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)


def test_an_api_only_process_streams_a_run_another_process_drives(
    servers: tuple[LiveServer, LiveServer], script: list[Any]
) -> None:
    front, worker = servers
    script.append(Reply(text="Served from elsewhere.", chunk_chars=5))
    sdk = _sdk(front)
    assistant = sdk.beta.assistants.create(model="fake-model")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    started = time.monotonic()
    with sdk.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        events = [event.event for event in stream]
        final = stream.get_final_run()
        messages = stream.get_final_messages()
    assert final.status == "completed"
    assert time.monotonic() - started < 0.9, "the worker is woken, not left to its poll"
    assert events[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert events[-1] == "thread.run.completed"
    stored = sdk.beta.threads.messages.list(thread.id).data[0]
    assert messages[-1].content[0].text.value == stored.content[0].text.value == (
        "Served from elsewhere.")
    # Either process replays the run's stream from any event on.
    for server in servers:
        with httpx.stream("GET", f"{server.url}/v1/threads/{thread.id}/runs/{final.id}/events",
                          headers={**BETA, "Last-Event-ID": "3"}) as response:
            names = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
        assert names == events[3:] + ["done"]


def test_cancel_through_one_process_while_another_streams(
    servers: tuple[LiveServer, LiveServer], script: list[Any]
) -> None:
    front, worker = servers
    script.append(Reply(text="Thinking hard", stall_seconds=30))
    assistant = _sdk(front).beta.assistants.create(model="fake-model")
    thread = _sdk(front).beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    names: list[str] = []
    with _sdk(worker).beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id, stream=True
    ) as stream:
        for event in stream:
            names.append(event.event)
            if event.event == "thread.message.delta" and names.count(event.event) == 1:
                run_id = next(iter(_sdk(front).beta.threads.runs.list(thread.id))).id
                _sdk(front).beta.threads.runs.cancel(run_id, thread_id=thread.id)
    assert names[-4:] == ["thread.run.cancelling", "thread.message.incomplete",
                          "thread.run.step.cancelled", "thread.run.cancelled"]


@pytest.fixture
async def bus(prefix: str) -> AsyncIterator[RedisEventBus]:
    shared = RedisEventBus(REDIS_URL, prefix=prefix, retention_seconds=30)
    yield shared
    await shared.close()


async def test_concurrent_publishers_get_one_gapless_order(bus: RedisEventBus) -> None:
    other = RedisEventBus(REDIS_URL, prefix=bus.prefix)  # as if in another process
    try:
        assert await bus.watch("run_x") is True
        assert await other.watch("run_x") is False
        assert not RedisEventBus(REDIS_URL, prefix=bus.prefix).watching("run_x")

        async def produce(source: RedisEventBus, tag: str) -> None:
            for i in range(100):
                await source.publish("run_x", [(f"thread.{tag}", str(i))])

        await asyncio.gather(produce(bus, "a"), produce(other, "b"))
        await bus.publish("run_x", [("thread.run.completed", "{}"), ("done", "[DONE]")],
                          final=True)
        seen = [event async for batch in bus.subscribe("run_x") for event in batch]
        assert [e.seq for e in seen] == list(range(1, 203))
        assert [int(e.data) for e in seen if e.name == "thread.a"] == list(range(100))
        assert [int(e.data) for e in seen if e.name == "thread.b"] == list(range(100))
        assert seen[-1].name == "done" and await bus.last_seq("run_x") == 202
        # Past the end of a finished log: nothing, at once.
        assert [b async for b in bus.subscribe("run_x", after=202)] == []
        assert [b async for b in bus.subscribe("run_unknown")] == []
    finally:
        await other.close()


async def test_hundreds_of_streams_of_one_process_are_served(bus: RedisEventBus) -> None:
    """Each subscriber holds a connection while it waits: more than the Redis client's default
    pool of 100 must still be served, and requests beside them too."""
    assert await bus.watch("run_many") is True
    await bus.publish("run_many", [("thread.run.created", "{}")])
    subscribers = [asyncio.create_task(_collect(bus.subscribe("run_many"))) for _ in range(300)]
    await asyncio.sleep(1.5)  # all of them are waiting in their blocking reads
    assert await bus.last_seq("run_many") == 1  # a request beside them gets a connection
    await bus.publish("run_many", [("done", "[DONE]")], final=True)
    seen = await asyncio.wait_for(asyncio.gather(*subscribers), 30)
    assert all(names == ["thread.run.created", "done"] for names in seen)


async def _collect(batches: AsyncIterator[list[Event]]) -> list[str]:
    return [event.name async for batch in batches for event in batch]


@pytest.mark.parametrize("kind", ["local", "redis"])
async def test_segment_start_is_after_the_previous_stream(kind: str, prefix: str) -> None:
    from assistants_server.events.bus import LocalEventBus

    bus: Any = LocalEventBus() if kind == "local" else RedisEventBus(REDIS_URL, prefix=prefix)
    try:
        await bus.watch("run_s")
        assert await bus.segment_start("run_s") == 0
        await bus.publish("run_s", [("thread.run.created", "{}"),
                                    ("thread.run.requires_action", "{}"), ("done", "[DONE]")])
        assert await bus.segment_start("run_s") == 0  # the log ends the first stream
        await bus.publish("run_s", [("thread.run.queued", "{}")])
        assert await bus.segment_start("run_s") == 3  # the second began after event 3
        await bus.publish("run_s", [("thread.run.completed", "{}"), ("done", "[DONE]")],
                          final=True)
        assert await bus.segment_start("run_s") == 3
        second = [e.name async for batch in bus.subscribe("run_s", 3) for e in batch]
        assert second == ["thread.run.queued", "thread.run.completed", "done"]
    finally:
        if kind == "redis":
            await bus.close()
