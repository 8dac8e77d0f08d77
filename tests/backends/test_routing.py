"""The model router over several fake backends on loopback: which backend, and which of its
model names, a public name reaches; falling back to the next backend only before the first
token; and what each backend's configuration changes in the request it receives."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from assistants_server.backends.chat import (
    BackendError,
    ChatEvent,
    ChatRequest,
    Finish,
    TextDelta,
    ToolCallDelta,
)
from assistants_server.backends.config import (
    BackendConfig,
    ModelRoute,
    ModelsConfig,
    Target,
    Timeouts,
)
from assistants_server.backends.openai_compat import IMAGE_PLACEHOLDER
from assistants_server.backends.router import ModelRouter
from tests.conftest import LiveServer
from tests.fake_backend import Reply

DEAD = "http://127.0.0.1:9/v1"
USER = {"role": "user", "content": "hi"}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object",
                                          "properties": {"city": {"type": "string"}}}}}


def script(fake: LiveServer, *replies: Reply) -> list[dict[str, Any]]:
    """Queue the fake's replies; the request bodies it receives, as they arrive."""
    state: Any = fake.server.config.app.state  # type: ignore[union-attr]
    state.script.extend(replies)
    bodies: list[dict[str, Any]] = state.bodies
    return bodies


def config(name: str, fake: LiveServer | str, **options: Any) -> BackendConfig:
    url = fake if isinstance(fake, str) else fake.url + "/v1"
    return BackendConfig(name=name, base_url=url, **{"retries": 0, **options})


@contextlib.asynccontextmanager
async def routed(*backends: BackendConfig, models: list[ModelRoute]) -> AsyncIterator[ModelRouter]:
    router = ModelRouter.from_config(ModelsConfig(backends=list(backends), models=models))
    try:
        yield router
    finally:
        await router.aclose()


@pytest.fixture
async def router(alpha: LiveServer, beta: LiveServer) -> AsyncIterator[ModelRouter]:
    async with routed(config("alpha", alpha), config("beta", beta), models=[
        ModelRoute(name="gpt-4o", aliases=["gpt-4o-latest"], backend="alpha",
                   model="llama3.1:8b"),
        ModelRoute(name="llama3", aliases=["gpt-3.5-turbo"], backend="alpha"),
        ModelRoute(name="gpt-4-turbo*", backend="beta", model="qwen2.5:72b"),
        ModelRoute(name="*", backend="beta"),
    ]) as models:
        yield models


async def collect(router: ModelRouter, model: str = "gpt-4o", **fields: Any) -> list[ChatEvent]:
    fields.setdefault("messages", [USER])
    return [event async for event in router.stream_chat(ChatRequest(model=model, **fields))]


def text(events: list[ChatEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


@pytest.mark.parametrize(("public", "backend", "model"), [
    ("gpt-4o", "alpha", "llama3.1:8b"),
    ("gpt-4o-latest", "alpha", "llama3.1:8b"),
    ("gpt-4-turbo-2024-04-09", "beta", "qwen2.5:72b"),
    ("mistral-small", "beta", "mistral-small"),
], ids=["exact-name", "alias", "pattern", "catch-all-passes-the-name-through"])
async def test_public_name_reaches_its_backend_under_the_backend_model_name(
    router: ModelRouter, alpha: LiveServer, beta: LiveServer, public: str, backend: str,
    model: str,
) -> None:
    fakes = {"alpha": alpha, "beta": beta}
    bodies = {name: script(fake, Reply(text=f"from {name}")) for name, fake in fakes.items()}
    assert text(await collect(router, public)) == f"from {backend}"
    assert [body["model"] for body in bodies[backend]] == [model]
    assert bodies["beta" if backend == "alpha" else "alpha"] == []


async def test_alias_of_a_route_without_a_model_reaches_the_route_name(
    router: ModelRouter, alpha: LiveServer
) -> None:
    bodies = script(alpha, Reply(text="ok"))
    await collect(router, "gpt-3.5-turbo")
    assert bodies[-1]["model"] == "llama3"


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_backend_failing_before_its_first_token_falls_back_after_its_retries(
    alpha: LiveServer, beta: LiveServer, status: int
) -> None:
    failing = Reply(status=status, headers={"retry-after-ms": "10"})
    first = script(alpha, failing, failing, Reply(text="never"))
    second = script(beta, Reply(text="from beta"))
    async with routed(config("alpha", alpha, retries=1), config("beta", beta), models=[
        ModelRoute(name="gpt-4o", backend="alpha", model="a-model",
                   fallbacks=[Target(backend="beta", model="b-model")])]) as router:
        assert text(await collect(router)) == "from beta"
    assert [body["model"] for body in first] == ["a-model", "a-model"]
    assert [body["model"] for body in second] == ["b-model"]


async def test_unreachable_backend_falls_back_to_the_next(beta: LiveServer) -> None:
    bodies = script(beta, Reply(text="from beta"))
    async with routed(config("dead", DEAD), config("beta", beta), models=[
        ModelRoute(name="gpt-4o", backend="dead", fallbacks=[Target(backend="beta")])]) as router:
        assert text(await collect(router)) == "from beta"
    assert [body["model"] for body in bodies] == ["gpt-4o"]


async def test_last_backend_failing_reports_its_own_error(alpha: LiveServer) -> None:
    script(alpha, Reply(status=503))
    async with routed(config("dead", DEAD), config("alpha", alpha), models=[
        ModelRoute(name="gpt-4o", backend="dead", fallbacks=[Target(backend="alpha")])]) as router:
        with pytest.raises(BackendError) as caught:
            await collect(router)
    assert "'alpha' answered HTTP 503" in caught.value.message


async def test_refused_request_does_not_fall_back(alpha: LiveServer, beta: LiveServer) -> None:
    script(alpha, Reply(status=400, error_chunk="bad messages"))
    second = script(beta, Reply(text="never"))
    async with routed(config("alpha", alpha), config("beta", beta), models=[
        ModelRoute(name="gpt-4o", backend="alpha", fallbacks=[Target(backend="beta")])]) as router:
        with pytest.raises(BackendError) as caught:
            await collect(router)
    assert caught.value.code == "invalid_prompt" and "bad messages" in caught.value.message
    assert second == []


@pytest.mark.parametrize(("reply", "said"), [
    (Reply(text="partial", error_chunk="out of memory"), "failed mid-answer: out of memory"),
    (Reply(text="partial", stall_seconds=3), "stalled for 0.3 s mid-answer"),
    (Reply(text="partial", no_finish=True), "without a finish_reason"),
], ids=["error-chunk", "stall", "done-without-finish-reason"])
async def test_failure_after_the_first_token_is_the_answer_and_never_falls_back(
    alpha: LiveServer, beta: LiveServer, reply: Reply, said: str
) -> None:
    script(alpha, reply)
    second = script(beta, Reply(text="never"))
    seen: list[ChatEvent] = []
    async with routed(config("alpha", alpha, timeouts=Timeouts(idle=0.3)), config("beta", beta),
                      models=[ModelRoute(name="gpt-4o", backend="alpha",
                                         fallbacks=[Target(backend="beta")])]) as router:
        with pytest.raises(BackendError) as caught:
            async for event in router.stream_chat(ChatRequest(model="gpt-4o", messages=[USER])):
                seen.append(event)
    assert text(seen) == "partial" and said in caught.value.message
    assert caught.value.code == "server_error" and second == []


async def test_token_limit_goes_under_each_backends_own_parameter(
    alpha: LiveServer, beta: LiveServer
) -> None:
    first, second = script(alpha), script(beta)
    async with routed(config("alpha", alpha), config("beta", beta,
                                                     token_limit_parameter="max_tokens"),
                      models=[ModelRoute(name="a", backend="alpha"),
                              ModelRoute(name="b", backend="beta")]) as router:
        await collect(router, "a", max_completion_tokens=300)
        await collect(router, "b", max_completion_tokens=300)
    assert first[-1]["max_completion_tokens"] == 300 and "max_tokens" not in first[-1]
    assert second[-1]["max_tokens"] == 300 and "max_completion_tokens" not in second[-1]


async def test_backend_cap_applies_only_when_the_request_sets_none(
    alpha: LiveServer, beta: LiveServer
) -> None:
    first, second = script(alpha), script(beta)
    async with routed(config("alpha", alpha, max_completion_tokens=123),
                      config("beta", beta, max_completion_tokens=None),
                      models=[ModelRoute(name="a", backend="alpha"),
                              ModelRoute(name="b", backend="beta")]) as router:
        await collect(router, "a")
        await collect(router, "a", max_completion_tokens=50)
        await collect(router, "b")
    assert [body["max_completion_tokens"] for body in first] == [123, 50]
    assert "max_completion_tokens" not in second[-1] and "max_tokens" not in second[-1]


async def test_reasoning_format_and_tool_options_reach_the_backend(
    router: ModelRouter, alpha: LiveServer
) -> None:
    bodies = script(alpha, Reply(text="{}"))
    schema = {"type": "json_schema", "json_schema": {
        "name": "weather", "strict": True, "schema": {
            "type": "object", "properties": {"city": {"type": "string"}},
            "required": ["city"], "additionalProperties": False}}}
    choice = {"type": "function", "function": {"name": "get_weather"}}
    await collect(router, tools=[WEATHER], tool_choice=choice, parallel_tool_calls=False,
                  reasoning_effort="high", response_format=schema)
    sent = bodies[-1]
    assert sent["tools"] == [WEATHER] and sent["tool_choice"] == choice
    assert sent["parallel_tool_calls"] is False and sent["reasoning_effort"] == "high"
    assert sent["response_format"] == schema


async def test_image_reaches_a_vision_backend_and_becomes_a_note_for_a_text_only_one(
    alpha: LiveServer, beta: LiveServer
) -> None:
    first, second = script(alpha), script(beta)
    message = {"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}
    async with routed(config("alpha", alpha, vision=True), config("beta", beta),
                      models=[ModelRoute(name="seeing", backend="alpha"),
                              ModelRoute(name="blind", backend="beta")]) as router:
        await collect(router, "seeing", messages=[message])
        await collect(router, "blind", messages=[message])
    assert first[-1]["messages"] == [message]
    assert second[-1]["messages"] == [
        {"role": "user", "content": f"What is this?\n{IMAGE_PLACEHOLDER}"}]
    assert "iVBORw0KGgo" not in json.dumps(second[-1])


async def test_max_concurrency_queues_in_this_server_without_running_the_first_token_clock(
    alpha: LiveServer
) -> None:
    bodies = script(alpha, Reply(text="first", hang_seconds=0.8),
                    Reply(text="second", hang_seconds=0.8))
    sent_while_first_answered: list[int] = []
    single = config("alpha", alpha, max_concurrency=1, timeouts=Timeouts(first_token=1.2))
    async with routed(single, models=[ModelRoute(name="m", backend="alpha")]) as router:

        async def first() -> str:
            events = []
            async for event in router.stream_chat(ChatRequest(model="m", messages=[USER])):
                sent_while_first_answered.append(len(bodies))
                events.append(event)
            return text(events)

        first_task = asyncio.create_task(first())
        await asyncio.sleep(0.1)
        # Waits about 0.7 s for the slot, then 0.8 s for its first token: past first_token
        # (1.2 s) from its start, within it from when the request was let go.
        second = await collect(router, "m")
        assert await first_task == "first" and text(second) == "second"
    assert set(sent_while_first_answered) == {1} and len(bodies) == 2


async def test_backend_that_cannot_stream_tools_is_asked_without_streaming_from_then_on(
    alpha: LiveServer
) -> None:
    call = {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
    bodies = script(alpha, Reply(refuse_streaming_tools=True), Reply(tool_calls=[call]),
                    Reply(tool_calls=[call]), Reply(text="plain"))
    async with routed(config("alpha", alpha, max_concurrency=1),
                      models=[ModelRoute(name="m", backend="alpha")]) as router:
        answered = await collect(router, "m", tools=[WEATHER])
        assert [bool(body.get("stream")) for body in bodies] == [True, False]
        calls = [event for event in answered if isinstance(event, ToolCallDelta)]
        assert [(c.id, c.name, c.arguments) for c in calls] == [
            ("call_1", "get_weather", '{"city": "Paris"}')]
        assert Finish("tool_calls") in answered
        again = await collect(router, "m", tools=[WEATHER])
        assert [bool(body.get("stream")) for body in bodies] == [True, False, False]
        assert any(isinstance(event, ToolCallDelta) for event in again)
        # Without tools there is nothing to refuse: that answer still streams.
        assert text(await collect(router, "m")) == "plain" and bodies[-1]["stream"] is True
