"""The Chat Completions client against a fake backend over a real loopback socket."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from assistants_server.backends.chat import (
    BackendError,
    ChatEvent,
    ChatRequest,
    Finish,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistants_server.backends.openai_compat import OpenAICompatibleBackend
from assistants_server.backends.transport import backend_client
from tests.conftest import LiveServer
from tests.fake_backend import Reply, create_fake_backend

REQUEST = ChatRequest(model="fake", messages=[{"role": "user", "content": "hi"}])


@pytest.fixture
def fake() -> Iterator[LiveServer]:
    with LiveServer(create_fake_backend(api_key="sk-b")) as server:
        yield server


@pytest.fixture
async def backend(fake: LiveServer) -> AsyncIterator[OpenAICompatibleBackend]:
    async with backend_client(timeout=2.0, max_idle=4) as client:
        yield OpenAICompatibleBackend(client, fake.url + "/v1", "sk-b", backoff_seconds=0.01)


def script(fake: LiveServer, *replies: Reply) -> list[dict[str, object]]:
    state = fake.server.config.app.state
    state.script.extend(replies)
    bodies: list[dict[str, object]] = state.bodies
    return bodies


async def collect(backend: OpenAICompatibleBackend, request: ChatRequest = REQUEST) -> list[
        ChatEvent]:
    return [event async for event in backend.stream_chat(request)]


async def test_text_is_streamed_in_deltas_with_usage_and_finish(
    backend: OpenAICompatibleBackend, fake: LiveServer
) -> None:
    bodies = script(fake, Reply(text="Hello world", usage=(12, 3)))
    events = await collect(backend)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello world"
    assert len([e for e in events if isinstance(e, TextDelta)]) == 3
    assert Finish("stop") in events and Usage(12, 3) in events
    assert bodies[-1]["stream"] is True
    assert bodies[-1]["stream_options"] == {"include_usage": True}


async def test_tool_call_fragments_keep_index_id_and_name_on_the_first(
    backend: OpenAICompatibleBackend, fake: LiveServer
) -> None:
    calls = [{"id": "call_a", "name": "weather", "arguments": json.dumps({"city": "Paris"})},
             {"id": "call_b", "name": "time", "arguments": "{}"}]
    script(fake, Reply(tool_calls=calls))
    deltas = [e for e in await collect(backend) if isinstance(e, ToolCallDelta)]
    first = {d.index: d for d in reversed(deltas)}
    assert (first[0].id, first[0].name, first[1].id, first[1].name) == (
        "call_a", "weather", "call_b", "time")
    joined = {i: "".join(d.arguments for d in deltas if d.index == i) for i in (0, 1)}
    assert json.loads(joined[0]) == {"city": "Paris"} and joined[1] == "{}"


async def test_request_carries_tools_choice_and_format(
    backend: OpenAICompatibleBackend, fake: LiveServer
) -> None:
    bodies = script(fake, Reply(text="ok"))
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    await collect(backend, ChatRequest(
        model="fake", messages=[], tools=[tool], tool_choice="required",
        parallel_tool_calls=False, temperature=0.3, max_tokens=300,
        response_format={"type": "json_object"}))
    sent = bodies[-1]
    assert sent["tools"] == [tool] and sent["tool_choice"] == "required"
    assert sent["parallel_tool_calls"] is False and sent["temperature"] == 0.3
    assert sent["max_tokens"] == 300 and sent["response_format"] == {"type": "json_object"}


async def test_rate_limit_is_retried_after_the_hinted_delay(
    backend: OpenAICompatibleBackend, fake: LiveServer
) -> None:
    bodies = script(fake, Reply(status=429, headers={"retry-after-ms": "300"}), Reply(text="ok"))
    started = time.monotonic()
    events = await collect(backend)
    assert time.monotonic() - started >= 0.3
    assert TextDelta("ok") in events and len(bodies) == 2


async def test_persistent_rate_limit_maps_to_rate_limit_exceeded(
    backend: OpenAICompatibleBackend, fake: LiveServer
) -> None:
    script(fake, *[Reply(status=429) for _ in range(3)])
    with pytest.raises(BackendError) as caught:
        await collect(backend)
    assert caught.value.code == "rate_limit_exceeded"
    assert "HTTP 429" in caught.value.message and "fake failure 429" in caught.value.message


async def test_server_errors_are_retried_then_reported_as_server_error(
    backend: OpenAICompatibleBackend, fake: LiveServer
) -> None:
    bodies = script(fake, Reply(status=500), Reply(status=503), Reply(status=502))
    with pytest.raises(BackendError) as caught:
        await collect(backend)
    assert caught.value.code == "server_error" and len(bodies) == 3


async def test_bad_request_is_not_retried_and_is_an_invalid_prompt(
    backend: OpenAICompatibleBackend, fake: LiveServer
) -> None:
    bodies = script(fake, Reply(status=400), Reply(text="never"))
    with pytest.raises(BackendError) as caught:
        await collect(backend)
    assert caught.value.code == "invalid_prompt" and len(bodies) == 1


async def test_garbled_stream_is_a_server_error(
    backend: OpenAICompatibleBackend, fake: LiveServer
) -> None:
    script(fake, Reply(garbled=True))
    with pytest.raises(BackendError) as caught:
        await collect(backend)
    assert caught.value.code == "server_error" and "not JSON" in caught.value.message


async def test_stream_that_stops_before_done_is_a_server_error(
    backend: OpenAICompatibleBackend, fake: LiveServer
) -> None:
    script(fake, Reply(text="partial", truncated=True))
    with pytest.raises(BackendError) as caught:
        await collect(backend)
    assert "before [DONE]" in caught.value.message


async def test_hanging_backend_times_out_as_a_server_error(fake: LiveServer) -> None:
    script(fake, *[Reply(text="late", hang_seconds=3) for _ in range(2)])
    async with backend_client(timeout=0.3, max_idle=4) as client:
        backend = OpenAICompatibleBackend(client, fake.url + "/v1", "sk-b", max_retries=1,
                                          backoff_seconds=0.01)
        with pytest.raises(BackendError) as caught:
            await collect(backend)
    assert caught.value.code == "server_error" and "timed out" in caught.value.message


async def test_unreachable_backend_is_a_server_error() -> None:
    async with backend_client(timeout=5.0, max_idle=4) as client:
        backend = OpenAICompatibleBackend(client, "http://127.0.0.1:9/v1", max_retries=0)
        with pytest.raises(BackendError) as caught:
            await collect(backend)
    assert "could not be reached" in caught.value.message


async def test_timeout_after_tokens_were_relayed_is_not_retried(fake: LiveServer) -> None:
    bodies = script(fake, Reply(text="abcd", stall_seconds=3), Reply(text="again"))
    async with backend_client(timeout=0.3, max_idle=4) as client:
        backend = OpenAICompatibleBackend(client, fake.url + "/v1", "sk-b", max_retries=2,
                                          backoff_seconds=0.01)
        seen: list[ChatEvent] = []
        with pytest.raises(BackendError) as caught:
            async for event in backend.stream_chat(REQUEST):
                seen.append(event)
    assert seen == [TextDelta("abcd")]
    assert caught.value.code == "server_error" and len(bodies) == 1


async def test_one_connection_serves_consecutive_completions(
    backend: OpenAICompatibleBackend, fake: LiveServer
) -> None:
    script(fake, Reply(text="one"), Reply(text="two"), Reply(text="three"))
    for _ in range(3):
        await collect(backend)
    peers = fake.server.config.app.state.peers
    assert len(peers) == 3 and len(set(peers)) == 1
