"""Runs on the backends real deployments have: a public model name routed to a local model,
tool calls parsed by this server (`tagged`), backends that cannot stream tool calls or cut
answers short, images, context-length refusals and the default cap on generated tokens."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from assistants_server.backends.config import BackendConfig, ModelRoute, ModelsConfig
from tests.conftest import LiveServer
from tests.fake_backend import Reply

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}}}}
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


@pytest.fixture
def database() -> str:
    return "sqlite"  # what is tested here is the same on both databases


def _config(backend: LiveServer, **options: Any) -> ModelsConfig:
    return ModelsConfig(
        backends=[BackendConfig(name="local", base_url=backend.url + "/v1", **options)],
        models=[ModelRoute(name="gpt-4o", backend="local", model="fake-model",
                           aliases=["gpt-4o-mini"])])


@pytest.fixture
def settings_overrides(backend: LiveServer) -> dict[str, Any]:
    return {"models_config": _config(backend, tool_calling="tagged", vision=True),
            "lease_seconds": 3.0}


async def _run(client: httpx.AsyncClient, *, tools: list[Any] | None = None,
               content: Any = "What is the weather in Paris?", model: str = "gpt-4o",
               **run: Any) -> tuple[str, dict[str, Any]]:
    assistant = (await client.post("/v1/assistants", json={
        "model": model, "tools": tools or []})).json()
    thread = (await client.post("/v1/threads", json={
        "messages": [{"role": "user", "content": content}]})).json()
    created = await client.post(f"/v1/threads/{thread['id']}/runs",
                                json={"assistant_id": assistant["id"], **run})
    assert created.status_code == 200, created.text
    return thread["id"], await _wait(client, thread["id"], created.json()["id"])


async def _wait(client: httpx.AsyncClient, thread_id: str, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        run: dict[str, Any] = (await client.get(
            f"/v1/threads/{thread_id}/runs/{run_id}")).json()
        if run["status"] not in ("queued", "in_progress"):
            return run
        assert time.monotonic() < deadline, f"run stuck in {run['status']}"
        await asyncio.sleep(0.02)


async def _answer(client: httpx.AsyncClient, thread_id: str) -> str:
    messages = (await client.get(f"/v1/threads/{thread_id}/messages")).json()["data"]
    return str(messages[0]["content"][-1]["text"]["value"])


async def test_a_tagged_backend_calls_functions_like_a_native_one(
    client: httpx.AsyncClient, script: list[Reply], sent: list[dict[str, Any]]
) -> None:
    script += [Reply(text="Let me check. " + CALL, chunk_chars=3),
               Reply(text="It is sunny in Paris.")]
    thread_id, run = await _run(client, tools=[WEATHER])
    assert run["status"] == "requires_action" and run["model"] == "gpt-4o"
    (call,) = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    first = sent[-1]
    assert first["model"] == "fake-model" and "tools" not in first
    assert "<tools>" in first["messages"][0]["content"]
    submitted = await client.post(
        f"/v1/threads/{thread_id}/runs/{run['id']}/submit_tool_outputs",
        json={"tool_outputs": [{"tool_call_id": call["id"], "output": "sunny, 22C"}]})
    assert submitted.status_code == 200, submitted.text
    done = await _wait(client, thread_id, run["id"])
    assert done["status"] == "completed"
    assert await _answer(client, thread_id) == "It is sunny in Paris."
    replayed = sent[-1]["messages"]
    assert "<tool_response>\nsunny, 22C\n</tool_response>" in replayed[-1]["content"]
    assert '"name": "get_weather"' in replayed[-2]["content"]
    assert not any(m["role"] == "tool" for m in replayed)


async def test_tool_call_markup_never_reaches_the_thread(
    client: httpx.AsyncClient, script: list[Reply]
) -> None:
    script += [Reply(text="Checking. " + CALL, chunk_chars=1)]
    thread_id, run = await _run(client, tools=[WEATHER])
    assert run["status"] == "requires_action"
    messages = (await client.get(f"/v1/threads/{thread_id}/messages")).json()["data"]
    shown = json.dumps(messages)
    assert "Checking." in shown and "tool_call" not in shown


async def test_a_tagged_backend_searches_files(
    client: httpx.AsyncClient, script: list[Reply], sent: list[dict[str, Any]]
) -> None:
    search = '<tool_call>{"name": "file_search", "arguments": {"query": "refunds"}}</tool_call>'
    script += [Reply(text=search), Reply(text="No refund policy was found.")]
    thread_id, run = await _run(client, tools=[{"type": "file_search"}])
    assert run["status"] == "completed", run
    steps = (await client.get(f"/v1/threads/{thread_id}/runs/{run['id']}/steps")).json()
    kinds = [step["step_details"]["type"] for step in steps["data"]]
    assert "tool_calls" in kinds
    tool_step = next(s for s in steps["data"] if s["type"] == "tool_calls")
    assert tool_step["step_details"]["tool_calls"][0]["type"] == "file_search"
    assert "<tool_response>" in sent[-1]["messages"][-1]["content"]


async def test_invalid_tool_json_is_corrected_once_then_fails_the_run(
    client: httpx.AsyncClient, script: list[Reply], sent: list[dict[str, Any]]
) -> None:
    bad = '<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>'
    script += [Reply(text=bad), Reply(text=bad)]
    _, run = await _run(client, tools=[WEATHER])
    assert run["status"] == "failed"
    assert run["last_error"]["code"] == "server_error"
    assert "invalid tool arguments" in run["last_error"]["message"]
    assert len(sent) == 2 and "not valid" in sent[-1]["messages"][-1]["content"]


async def test_an_answer_without_a_finish_reason_fails_instead_of_completing(
    client: httpx.AsyncClient, script: list[Reply]
) -> None:
    script += [Reply(text="", no_finish=True)]
    _, run = await _run(client)
    assert run["status"] == "failed"
    assert "without a finish_reason" in run["last_error"]["message"]


async def test_an_image_file_reaches_a_vision_model_as_a_data_url(
    client: httpx.AsyncClient, sent: list[dict[str, Any]]
) -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    uploaded = (await client.post("/v1/files", data={"purpose": "vision"},
                                  files={"file": ("chart.png", png, "image/png")})).json()
    content = [{"type": "text", "text": "What is in this chart?"},
               {"type": "image_file", "image_file": {"file_id": uploaded["id"]}}]
    _, run = await _run(client, content=content)
    assert run["status"] == "completed"
    parts = sent[-1]["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "What is in this chart?"}
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgpmYWtl")


async def test_the_backend_cap_on_generated_tokens_applies_and_ends_incomplete(
    client: httpx.AsyncClient, script: list[Reply], sent: list[dict[str, Any]]
) -> None:
    script += [Reply(text="A story that goes on and", finish="length")]
    _, run = await _run(client, model="gpt-4o-mini")
    assert sent[-1]["max_completion_tokens"] == 4096 and "max_tokens" not in sent[-1]
    assert run["status"] == "incomplete" and run["model"] == "gpt-4o-mini"
    assert run["incomplete_details"] == {"reason": "max_completion_tokens"}


async def test_a_context_length_refusal_is_asked_again_with_fewer_messages(
    client: httpx.AsyncClient, script: list[Reply], sent: list[dict[str, Any]]
) -> None:
    too_long = ("This model's maximum context length is 2048 tokens. However, your messages "
                "resulted in 2100 tokens.")
    script += [Reply(status=400, error_chunk=too_long), Reply(text="Short answer.")]
    assistant = (await client.post("/v1/assistants", json={"model": "gpt-4o"})).json()
    thread = (await client.post("/v1/threads", json={"messages": [
        {"role": "user", "content": f"message {n}"} for n in range(6)]})).json()
    created = (await client.post(f"/v1/threads/{thread['id']}/runs",
                                 json={"assistant_id": assistant["id"]})).json()
    run = await _wait(client, thread["id"], created["id"])
    assert run["status"] == "completed"
    assert [len(body["messages"]) for body in sent[-2:]] == [6, 3]
    assert sent[-1]["messages"][-1]["content"] == "message 5"


async def test_a_model_no_route_serves_is_refused_when_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/assistants", json={"model": "gpt-3.5-turbo"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("The requested model 'gpt-3.5-turbo' does not exist.")
    assert (error["param"], error["code"]) == ("model", "model_not_found")
    assistant = (await client.post("/v1/assistants", json={"model": "gpt-4o"})).json()
    thread = (await client.post("/v1/threads")).json()
    response = await client.post(f"/v1/threads/{thread['id']}/runs", json={
        "assistant_id": assistant["id"], "model": "gpt-3.5-turbo"})
    assert response.status_code == 400 and "gpt-3.5-turbo" in response.text


class TestBackendThatCannotStreamToolCalls:
    @pytest.fixture
    def settings_overrides(self, backend: LiveServer) -> dict[str, Any]:
        return {"models_config": _config(backend)}

    async def test_tool_runs_are_asked_without_streaming_and_still_call_functions(
        self, client: httpx.AsyncClient, script: list[Reply], sent: list[dict[str, Any]]
    ) -> None:
        calls = [{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}]
        script += [Reply(refuse_streaming_tools=True), Reply(tool_calls=calls),
                   Reply(tool_calls=calls)]
        _, run = await _run(client, tools=[WEATHER])
        assert run["status"] == "requires_action", run
        assert [body.get("stream", False) for body in sent] == [True, False]
        await _run(client, tools=[WEATHER])  # the backend's limit was learnt
        assert sent[-1].get("stream", False) is False and len(sent) == 3


class TestTextOnlyBackend:
    @pytest.fixture
    def settings_overrides(self, backend: LiveServer) -> dict[str, Any]:
        return {"models_config": _config(backend, token_limit_parameter="max_tokens")}

    async def test_an_image_becomes_a_placeholder_and_max_tokens_is_sent(
        self, client: httpx.AsyncClient, sent: list[dict[str, Any]]
    ) -> None:
        content = [{"type": "text", "text": "Describe:"},
                   {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
        _, run = await _run(client, content=content, max_completion_tokens=300)
        assert run["status"] == "completed"
        message = sent[-1]["messages"][-1]["content"]
        assert message.startswith("Describe:\n[An image was attached here")
        assert sent[-1]["max_tokens"] == 300 and "max_completion_tokens" not in sent[-1]


class TestSmallContextWindow:
    @pytest.fixture
    def settings_overrides(self, backend: LiveServer) -> dict[str, Any]:
        return {"models_config": _config(backend, context_window=1024)}

    async def test_the_prompt_leaves_room_for_the_capped_answer(
        self, client: httpx.AsyncClient, sent: list[dict[str, Any]]
    ) -> None:
        from assistants_server.tokens import count_message

        assistant = (await client.post("/v1/assistants", json={"model": "gpt-4o"})).json()
        thread = (await client.post("/v1/threads", json={"messages": [
            {"role": "user", "content": f"note {n}: " + "lorem ipsum " * 30}
            for n in range(12)]})).json()
        created = (await client.post(f"/v1/threads/{thread['id']}/runs",
                                     json={"assistant_id": assistant["id"]})).json()
        run = await _wait(client, thread["id"], created["id"])
        assert run["status"] == "completed"
        body = sent[-1]
        # The backend's cap (4096) would not fit a 1024-token window: a quarter is asked for.
        assert body["max_completion_tokens"] == 256
        prompt = sum(count_message(m) for m in body["messages"])
        assert 0 < len(body["messages"]) < 12 and prompt <= 1024 - 256 - 102
        assert body["messages"][-1]["content"].startswith("note 11:")


class TestWindowTooSmallForTheTurn:
    @pytest.fixture
    def settings_overrides(self, backend: LiveServer) -> dict[str, Any]:
        return {"models_config": _config(backend, context_window=256)}

    async def test_the_run_fails_saying_the_window_is_too_small(
        self, client: httpx.AsyncClient, sent: list[dict[str, Any]]
    ) -> None:
        _, run = await _run(client, tools=[WEATHER, {"type": "file_search"}],
                            content="word " * 100)
        assert run["status"] == "failed" and sent == []
        assert run["last_error"]["code"] == "invalid_prompt"
        assert "does not fit the model's context window" in run["last_error"]["message"]
