"""The Chat Completions client against a fake backend over a real loopback socket: what it
sends each backend, its retries and time bounds, and how answers end."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

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
from assistants_server.backends.config import BackendConfig, Timeouts
from assistants_server.backends.openai_compat import ChatCompletionsBackend
from tests.conftest import LiveServer
from tests.fake_backend import Reply, create_fake_backend

REQUEST = ChatRequest(model="fake", messages=[{"role": "user", "content": "hi"}])
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.fixture
def fake() -> Iterator[LiveServer]:
    with LiveServer(create_fake_backend(api_key="sk-b")) as server:
        yield server


def make_backend(fake: LiveServer | str, **options: Any) -> ChatCompletionsBackend:
    url = fake if isinstance(fake, str) else fake.url + "/v1"
    options.setdefault("api_key", "sk-b")
    return ChatCompletionsBackend(BackendConfig(name="fake", base_url=url, **options),
                                  backoff_seconds=0.01)


@pytest.fixture
async def backend(fake: LiveServer) -> AsyncIterator[ChatCompletionsBackend]:
    backend = make_backend(fake, timeouts=Timeouts(first_token=2.0, idle=2.0))
    yield backend
    await backend.aclose()


def script(fake: LiveServer, *replies: Reply) -> list[dict[str, Any]]:
    state = fake.server.config.app.state
    state.script.extend(replies)
    bodies: list[dict[str, Any]] = state.bodies
    return bodies


async def collect(backend: ChatCompletionsBackend, request: ChatRequest = REQUEST) -> list[
        ChatEvent]:
    return [event async for event in backend.stream_chat(request)]


async def test_text_is_streamed_in_deltas_with_usage_and_finish(
    backend: ChatCompletionsBackend, fake: LiveServer
) -> None:
    bodies = script(fake, Reply(text="Hello world", usage=(12, 3)))
    events = await collect(backend)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello world"
    assert len([e for e in events if isinstance(e, TextDelta)]) == 3
    assert Finish("stop") in events and Usage(12, 3) in events
    assert bodies[-1]["stream"] is True
    assert bodies[-1]["stream_options"] == {"include_usage": True}


async def test_tool_call_fragments_keep_index_id_and_name_on_the_first(
    backend: ChatCompletionsBackend, fake: LiveServer
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
    backend: ChatCompletionsBackend, fake: LiveServer
) -> None:
    bodies = script(fake, Reply(text="ok"))
    await collect(backend, ChatRequest(
        model="fake", messages=[], tools=[TOOL], tool_choice="required",
        parallel_tool_calls=False, temperature=0.3, max_completion_tokens=300,
        reasoning_effort="low", response_format={"type": "json_object"}))
    sent = bodies[-1]
    assert sent["tools"] == [TOOL] and sent["tool_choice"] == "required"
    assert sent["parallel_tool_calls"] is False and sent["temperature"] == 0.3
    assert sent["max_completion_tokens"] == 300 and "max_tokens" not in sent
    assert sent["reasoning_effort"] == "low"
    assert sent["response_format"] == {"type": "json_object"}


async def test_rate_limit_is_retried_after_the_hinted_delay(
    backend: ChatCompletionsBackend, fake: LiveServer
) -> None:
    bodies = script(fake, Reply(status=429, headers={"retry-after-ms": "300"}), Reply(text="ok"))
    started = time.monotonic()
    events = await collect(backend)
    assert time.monotonic() - started >= 0.3
    assert TextDelta("ok") in events and len(bodies) == 2


async def test_persistent_rate_limit_maps_to_rate_limit_exceeded(
    backend: ChatCompletionsBackend, fake: LiveServer
) -> None:
    script(fake, *[Reply(status=429) for _ in range(3)])
    with pytest.raises(BackendError) as caught:
        await collect(backend)
    assert caught.value.code == "rate_limit_exceeded"
    assert "HTTP 429" in caught.value.message and "fake failure 429" in caught.value.message


async def test_server_errors_are_retried_then_reported_as_server_error(
    backend: ChatCompletionsBackend, fake: LiveServer
) -> None:
    bodies = script(fake, Reply(status=500), Reply(status=503), Reply(status=502))
    with pytest.raises(BackendError) as caught:
        await collect(backend)
    assert caught.value.code == "server_error" and len(bodies) == 3


async def test_bad_request_is_not_retried_and_is_an_invalid_prompt(
    backend: ChatCompletionsBackend, fake: LiveServer
) -> None:
    bodies = script(fake, Reply(status=400), Reply(text="never"))
    with pytest.raises(BackendError) as caught:
        await collect(backend)
    assert caught.value.code == "invalid_prompt" and len(bodies) == 1


async def test_garbled_stream_is_a_server_error(
    backend: ChatCompletionsBackend, fake: LiveServer
) -> None:
    script(fake, Reply(garbled=True))
    with pytest.raises(BackendError) as caught:
        await collect(backend)
    assert caught.value.code == "server_error" and "not JSON" in caught.value.message


async def test_stream_that_stops_before_done_is_a_server_error(
    backend: ChatCompletionsBackend, fake: LiveServer
) -> None:
    script(fake, Reply(text="partial", truncated=True))
    with pytest.raises(BackendError) as caught:
        await collect(backend)
    assert "before [DONE]" in caught.value.message


async def test_hanging_backend_fails_at_the_first_token_bound_without_a_retry(
    fake: LiveServer
) -> None:
    bodies = script(fake, *[Reply(text="late", hang_seconds=3) for _ in range(2)])
    backend = make_backend(fake, retries=2, timeouts=Timeouts(first_token=0.3, idle=5))
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        await collect(backend)
    assert time.monotonic() - started < 1.5
    assert caught.value.code == "server_error"
    assert "sent no first token within 0.3 s" in caught.value.message
    # A read that timed out is not repeated: the backend would only queue another copy.
    assert len(bodies) == 1
    await backend.aclose()


async def test_unreachable_backend_is_a_server_error_that_allows_a_fallback() -> None:
    backend = make_backend("http://127.0.0.1:9/v1", retries=0)
    with pytest.raises(BackendError) as caught:
        await collect(backend)
    assert "could not be reached" in caught.value.message and caught.value.fallback
    await backend.aclose()


async def test_stall_after_tokens_were_relayed_fails_at_the_idle_bound(
    fake: LiveServer
) -> None:
    bodies = script(fake, Reply(text="abcd", stall_seconds=3), Reply(text="again"))
    backend = make_backend(fake, retries=2, timeouts=Timeouts(first_token=5, idle=0.3))
    seen: list[ChatEvent] = []
    with pytest.raises(BackendError) as caught:
        async for event in backend.stream_chat(REQUEST):
            seen.append(event)
    assert seen == [TextDelta("abcd")]
    assert caught.value.code == "server_error" and len(bodies) == 1
    assert "stalled for 0.3 s mid-answer" in caught.value.message
    await backend.aclose()


async def test_one_connection_serves_consecutive_completions(
    backend: ChatCompletionsBackend, fake: LiveServer
) -> None:
    script(fake, Reply(text="one"), Reply(text="two"), Reply(text="three"))
    for _ in range(3):
        await collect(backend)
    peers = fake.server.config.app.state.peers
    assert len(peers) == 3 and len(set(peers)) == 1


async def test_a_connection_dropped_mid_answer_is_a_backend_error_saying_so(
    backend: ChatCompletionsBackend, fake: LiveServer
) -> None:
    script(fake, Reply(text="partial", abort=True))
    seen: list[ChatEvent] = []
    with pytest.raises(BackendError) as caught:
        async for event in backend.stream_chat(REQUEST):
            seen.append(event)
    assert seen == [TextDelta("part"), TextDelta("ial")]
    assert "broke off its answer" in caught.value.message


async def test_a_backend_that_drops_streamed_tool_answers_is_asked_without_streaming(
    backend: ChatCompletionsBackend, fake: LiveServer
) -> None:
    calls = [{"id": "call_1", "name": "f", "arguments": "{}"}]
    bodies = script(fake, Reply(abort=True), Reply(tool_calls=calls))
    request = ChatRequest(model="fake", messages=[{"role": "user", "content": "hi"}],
                          tools=[TOOL])
    events = await collect(backend, request)
    assert [e.name for e in events if isinstance(e, ToolCallDelta)] == ["f"]
    assert [body.get("stream", False) for body in bodies] == [True, False]
    assert backend.stream_tools is False


async def test_reasoning_counts_as_the_model_at_work_for_the_first_token_bound(
    fake: LiveServer
) -> None:
    thoughts = ["Let", " me", " think", " it", " over"]
    script(fake, Reply(text="42", reasoning=thoughts, reasoning_pause=0.15))
    backend = make_backend(fake, timeouts=Timeouts(first_token=0.4, idle=0.4))
    events = await collect(backend)
    assert TextDelta("42") in events  # 0.75 s of reasoning, no bound passed
    await backend.aclose()


async def test_an_answer_asked_whole_is_bounded_by_total_not_first_token(
    fake: LiveServer
) -> None:
    calls = [{"id": "call_1", "name": "f", "arguments": "{}"}]
    script(fake, Reply(tool_calls=calls, hang_seconds=0.6))
    backend = make_backend(fake, stream_tools=False,
                           timeouts=Timeouts(first_token=0.3, idle=0.3, total=5))
    request = ChatRequest(model="fake", messages=[{"role": "user", "content": "hi"}],
                          tools=[TOOL])
    events = await collect(backend, request)
    assert [e.name for e in events if isinstance(e, ToolCallDelta)] == ["f"]
    await backend.aclose()


async def test_a_named_tool_choice_becomes_that_tool_alone_where_names_are_not_taken(
    fake: LiveServer
) -> None:
    other = {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}}
    bodies = script(fake, Reply(text="ok"))
    backend = make_backend(fake, named_tool_choice=False)
    await collect(backend, ChatRequest(
        model="fake", messages=[], tools=[other, TOOL],
        tool_choice={"type": "function", "function": {"name": "f"}}))
    assert bodies[-1]["tools"] == [TOOL] and bodies[-1]["tool_choice"] == "required"
    await backend.aclose()


async def test_answers_are_asked_uncompressed(backend: ChatCompletionsBackend, fake: LiveServer
                                              ) -> None:
    script(fake, Reply(text="ok"))
    await collect(backend)
    assert fake.server.config.app.state.requests[-1]["accept-encoding"] == "identity"


@pytest.mark.parametrize("failure", [Reply(status=400), Reply(text="late", hang_seconds=2)])
async def test_only_a_broken_stream_is_asked_again_without_streaming(
    fake: LiveServer, failure: Reply
) -> None:
    bodies = script(fake, failure, Reply(text="never"))
    backend = make_backend(fake, retries=0, timeouts=Timeouts(first_token=0.5, idle=5))
    request = ChatRequest(model="fake", messages=[{"role": "user", "content": "hi"}],
                          tools=[TOOL])
    with pytest.raises(BackendError):
        await collect(backend, request)
    # A refusal or a timeout would only be repeated (or queued twice at a busy backend).
    assert len(bodies) == 1 and backend.stream_tools is None
    await backend.aclose()
