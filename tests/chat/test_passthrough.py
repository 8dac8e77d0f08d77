"""`POST /v1/chat/completions` and `POST /v1/embeddings` through the official SDK: relayed to
the backend the model routes to, under that backend's model name, with fallbacks and the
backend's refusals in OpenAI's error shapes; a tagged backend's calls come back structured."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from assistants_server.backends.config import (
    BackendConfig,
    EmbeddingsConfig,
    ModelRoute,
    ModelsConfig,
    Target,
    Timeouts,
)
from tests.conftest import LiveServer
from tests.contract.sdk_errors import server_message
from tests.fake_backend import Reply

USER = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
CALL = {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
TAGGED = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


@pytest.fixture
def database() -> str:
    return "sqlite"  # the pass-through never touches the database


@pytest.fixture
def settings_overrides(alpha: LiveServer, beta: LiveServer) -> dict[str, Any]:
    def on(name: str, fake: LiveServer | None, **options: Any) -> BackendConfig:
        url = fake.url + "/v1" if fake else "http://127.0.0.1:9/v1"
        return BackendConfig(name=name, base_url=url, retries=0, **options)

    return {"models_config": ModelsConfig(
        backends=[on("alpha", alpha), on("beta", beta, token_limit_parameter="max_tokens"),
                  on("dead", None), on("tagger", alpha, tool_calling="tagged"),
                  on("patient", alpha, timeouts=Timeouts(first_token=1.0, idle=5.0)),
                  on("hesitant", alpha, timeouts=Timeouts(first_token=5.0, idle=0.5)),
                  on("dead-tagger", None, tool_calling="tagged"),
                  on("chatty", alpha)],
        models=[ModelRoute(name="gpt-4o", aliases=["gpt-4o-latest"], backend="alpha",
                           model="llama3.1:8b"),
                ModelRoute(name="gpt-4-turbo*", backend="beta", model="qwen2.5:72b"),
                ModelRoute(name="resilient", backend="dead",
                           fallbacks=[Target(backend="beta", model="qwen2.5:72b")]),
                ModelRoute(name="hermes", backend="tagger", model="hermes-3"),
                ModelRoute(name="hermes-resilient", backend="dead-tagger",
                           fallbacks=[Target(backend="tagger", model="hermes-3")]),
                ModelRoute(name="slow-writer", backend="patient"),
                ModelRoute(name="slow-starter", backend="hesitant"),
                ModelRoute(name="chat-only", backend="chatty"),
                ModelRoute(name="embed-large", backend="alpha", model="bge-m3")],
        embeddings=EmbeddingsConfig(backend="beta", model="nomic-embed-text"))}


def script(fake: LiveServer, *replies: Reply) -> list[dict[str, Any]]:
    state: Any = fake.server.config.app.state  # type: ignore[union-attr]
    state.script.extend(replies)
    bodies: list[dict[str, Any]] = state.bodies
    return bodies


def test_completion_is_relayed_and_answered_under_the_public_name(
    sdk: Any, alpha: LiveServer, beta: LiveServer
) -> None:
    first, second = script(alpha, Reply(text="Sunny, 24 C.")), script(beta)
    completion = sdk.chat.completions.create(model="gpt-4o", messages=USER)
    assert completion.choices[0].message.content == "Sunny, 24 C."
    assert completion.model == "gpt-4o" and completion.usage.prompt_tokens == 10
    assert first[-1]["model"] == "llama3.1:8b" and not first[-1].get("stream")
    assert first[-1]["messages"] == USER and second == []


def test_streamed_completion_relays_the_chunks(sdk: Any, alpha: LiveServer) -> None:
    bodies = script(alpha, Reply(text="Sunny and warm, 24 C."))
    chunks = list(sdk.chat.completions.create(model="gpt-4o", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Sunny and warm, 24 C.")
    assert len(chunks) > 3 and bodies[-1]["stream"] is True
    # The backend says "llama3.1:8b" in every chunk; the client sees the name it asked for.
    assert {chunk.model for chunk in chunks} == {"gpt-4o"}


def test_tool_calls_of_the_backend_reach_the_sdk(sdk: Any, alpha: LiveServer) -> None:
    bodies = script(alpha, Reply(tool_calls=[CALL]))
    completion = sdk.chat.completions.create(model="gpt-4o", messages=USER, tools=[WEATHER],
                                             tool_choice="required")
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert (call.id, call.function.name) == ("call_1", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert bodies[-1]["tools"] == [WEATHER] and bodies[-1]["tool_choice"] == "required"


def test_alias_is_routed_like_its_name(sdk: Any, alpha: LiveServer) -> None:
    bodies = script(alpha, Reply(text="ok"))
    completion = sdk.chat.completions.create(model="gpt-4o-latest", messages=USER)
    assert completion.model == "gpt-4o-latest" and bodies[-1]["model"] == "llama3.1:8b"


def test_pattern_route_gets_the_token_limit_under_its_backends_parameter(
    sdk: Any, beta: LiveServer
) -> None:
    bodies = script(beta, Reply(text="ok"))
    sdk.chat.completions.create(model="gpt-4-turbo-preview", messages=USER,
                                max_completion_tokens=50)
    assert bodies[-1]["model"] == "qwen2.5:72b"
    assert bodies[-1]["max_tokens"] == 50 and "max_completion_tokens" not in bodies[-1]


def test_unreachable_backend_falls_back_to_the_next(sdk: Any, beta: LiveServer) -> None:
    bodies = script(beta, Reply(text="from beta"), Reply(text="streamed from beta"))
    completion = sdk.chat.completions.create(model="resilient", messages=USER)
    assert completion.choices[0].message.content == "from beta"
    stream = sdk.chat.completions.create(model="resilient", messages=USER, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
        "streamed from beta")
    assert [body["model"] for body in bodies] == ["qwen2.5:72b", "qwen2.5:72b"]


def test_unknown_model_is_not_found(sdk: Any) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model="gpt-5-ultra", messages=USER)
    assert caught.value.code == "model_not_found"
    assert "gpt-5-ultra" in server_message(caught.value)


def test_backend_refusal_is_a_bad_request_in_the_backends_words(
    sdk: Any, alpha: LiveServer
) -> None:
    bodies = script(alpha, Reply(status=400, error_chunk="'temperature' must be at most 2"))
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="gpt-4o", messages=USER, temperature=2)
    assert "'temperature' must be at most 2" in server_message(caught.value)
    assert len(bodies) == 1


def test_streamed_answer_may_take_longer_than_the_first_token_bound(
    sdk: Any, alpha: LiveServer
) -> None:
    script(alpha, Reply(text="Sunny, 24 C.", stall_seconds=1.5))  # idle 5 s, first_token 1 s
    stream = sdk.chat.completions.create(model="slow-writer", messages=USER, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
        "Sunny, 24 C.")


def test_the_idle_bound_starts_with_the_first_token_not_the_role_chunk(
    sdk: Any, alpha: LiveServer
) -> None:
    script(alpha, Reply(text="Sunny.", hang_seconds=1.0))  # 1 s after the role chunk
    stream = sdk.chat.completions.create(model="slow-starter", messages=USER, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Sunny."


def test_openai_embedding_model_goes_to_the_configured_embeddings_backend(
    sdk: Any, alpha: LiveServer, beta: LiveServer
) -> None:
    first, second = script(alpha), script(beta)
    answer = sdk.embeddings.create(model="text-embedding-3-small", input=["Paris", "Rome"])
    assert [len(item.embedding) for item in answer.data] == [4, 4]
    assert answer.data[0].embedding[0] == 5.0 and answer.model == "text-embedding-3-small"
    assert second[-1]["model"] == "nomic-embed-text" and first == []


def test_embedding_model_with_a_route_goes_where_it_routes(
    sdk: Any, alpha: LiveServer, beta: LiveServer
) -> None:
    first, second = script(alpha), script(beta)
    answer = sdk.embeddings.create(model="embed-large", input=["Paris"])
    assert answer.model == "embed-large" and len(answer.data) == 1
    assert first[-1]["model"] == "bge-m3" and first[-1]["input"] == ["Paris"]
    assert second == []


def test_tagged_route_falls_back_before_the_first_token(sdk: Any, alpha: LiveServer) -> None:
    script(alpha, Reply(text=TAGGED))
    completion = sdk.chat.completions.create(model="hermes-resilient", messages=USER,
                                             tools=[WEATHER])
    assert completion.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_tagged_backend_refusal_is_a_bad_request(sdk: Any, alpha: LiveServer) -> None:
    script(alpha, Reply(status=400, error_chunk="'temperature' must be at most 2"))
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="hermes", messages=USER, tools=[WEATHER],
                                    temperature=2)
    assert "'temperature' must be at most 2" in server_message(caught.value)


def test_tagged_stream_has_choices_in_every_chunk_unless_usage_is_asked(
    sdk: Any, alpha: LiveServer
) -> None:
    script(alpha, Reply(text=TAGGED))
    chunks = list(sdk.chat.completions.create(model="hermes", messages=USER, tools=[WEATHER],
                                              stream=True))
    assert all(chunk.choices for chunk in chunks)  # clients read chunk.choices[0]


def test_tagged_backend_gives_a_structured_tool_call(sdk: Any, alpha: LiveServer) -> None:
    bodies = script(alpha, Reply(text=TAGGED))
    completion = sdk.chat.completions.create(model="hermes", messages=USER, tools=[WEATHER])
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls" and not message.content
    (call,) = message.tool_calls
    assert call.function.name == "get_weather" and call.id.startswith("call_")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert completion.model == "hermes" and bodies[-1]["model"] == "hermes-3"
    assert "tools" not in bodies[-1] and "<tools>" in bodies[-1]["messages"][0]["content"]


def test_tagged_backend_streams_a_structured_tool_call(sdk: Any, alpha: LiveServer) -> None:
    script(alpha, Reply(text=f"Let me check. {TAGGED}"))
    chunks = list(sdk.chat.completions.create(model="hermes", messages=USER, tools=[WEATHER],
                                              stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "Let me check."
    calls = [call for d in deltas for call in d.tool_calls or []]
    assert {call.function.name for call in calls} == {"get_weather"}
    arguments = "".join(call.function.arguments or "" for call in calls)
    assert json.loads(arguments) == {"city": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert "<tool_call>" not in json.dumps([c.model_dump() for c in chunks])


def test_models_list_shows_names_and_aliases_but_not_patterns(sdk: Any) -> None:
    assert [model.id for model in sdk.models.list()] == [
        "gpt-4o", "gpt-4o-latest", "resilient", "hermes", "hermes-resilient", "slow-writer",
        "slow-starter",
        "chat-only", "embed-large"]


def test_assistant_with_a_model_no_route_serves_is_refused(sdk: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.assistants.create(model="not-routed")
    assert caught.value.code == "model_not_found" and caught.value.param == "model"
    assert "The requested model 'not-routed' does not exist." in server_message(caught.value)
