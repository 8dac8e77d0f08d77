"""Streaming runs through the official SDK over a real socket: exact event order, the stream
helpers' accumulation, function calling across two streams, cancel, failures, token limits."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest

from tests.fake_backend import Reply

TOOL = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}}}}
START = ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
MESSAGE_OPEN = ["thread.run.step.created", "thread.run.step.in_progress",
                "thread.message.created", "thread.message.in_progress"]


def _setup(sdk: Any, **assistant: Any) -> tuple[Any, Any]:
    assistant_row = sdk.beta.assistants.create(model="fake-model", **assistant)
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    return assistant_row, thread


def test_plain_answer_streams_in_the_canonical_order(sdk: Any, script: list[Any]) -> None:
    script.append(Reply(text="Hello world!", chunk_chars=4, usage=(12, 3)))
    assistant, thread = _setup(sdk)
    events = list(sdk.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id, stream=True))
    assert [e.event for e in events] == [
        *START, *MESSAGE_OPEN, *["thread.message.delta"] * 3,
        "thread.message.completed", "thread.run.step.completed", "thread.run.completed"]
    by_name = {e.event: e.data for e in events}
    assert by_name["thread.run.created"].status == "queued"
    assert by_name["thread.run.in_progress"].started_at is not None
    created = by_name["thread.message.created"]
    assert (created.status, created.content, created.role) == ("in_progress", [], "assistant")
    step = by_name["thread.run.step.created"]
    assert step.step_details.message_creation.message_id == created.id
    deltas = [e.data.delta.content[0] for e in events if e.event == "thread.message.delta"]
    assert [d.index for d in deltas] == [0, 0, 0]
    assert "".join(d.text.value for d in deltas) == "Hello world!"
    completed_run = events[-1].data
    assert completed_run.usage.total_tokens == 15 and completed_run.expires_at is None
    assert by_name["thread.run.step.completed"].usage.completion_tokens == 3
    # The streamed message is the stored message, character for character.
    stored = sdk.beta.threads.messages.retrieve(created.id, thread_id=thread.id)
    assert stored.content[0].text.value == "Hello world!"
    assert stored == by_name["thread.message.completed"]
    assert sdk.beta.threads.runs.retrieve(completed_run.id, thread_id=thread.id) == completed_run


def test_event_handler_helpers_accumulate_the_stored_message(
    sdk: Any, script: list[Any]
) -> None:
    from openai import AssistantEventHandler

    script.append(Reply(text="The answer is 42, of course.", chunk_chars=3))
    assistant, thread = _setup(sdk)
    seen: list[str] = []

    class Handler(AssistantEventHandler):  # type: ignore[misc]
        def on_text_created(self, text: Any) -> None:
            seen.append("text_created")

        def on_text_delta(self, delta: Any, snapshot: Any) -> None:
            seen.append(delta.value)

        def on_event(self, event: Any) -> None:
            seen.append(event.event)

    with sdk.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=Handler()
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
        messages = stream.get_final_messages()
    assert run.status == "completed"
    assert "".join(s for s in seen if not s.startswith(("thread.", "text_"))) == (
        "The answer is 42, of course.")
    assert seen.count("text_created") == 1
    stored = sdk.beta.threads.messages.list(thread.id, order="desc").data[0]
    assert messages[-1].content[0].text.value == stored.content[0].text.value
    assert messages[-1].id == stored.id

    script.append(Reply(text="again"))
    with sdk.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        assert "".join(stream.text_deltas) == "again"


def test_parallel_function_calls_and_their_continuation(
    sdk: Any, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    from openai import AssistantEventHandler

    paris, rome = json.dumps({"city": "Paris"}), json.dumps({"city": "Rome"})
    script.append(Reply(tool_calls=[
        {"id": "call_paris", "name": "get_weather", "arguments": paris},
        {"id": "call_rome", "name": "get_weather", "arguments": rome}]))
    script.append(Reply(text="Sunny in both.", chunk_chars=7))
    assistant, thread = _setup(sdk, tools=[TOOL])
    created: list[Any] = []
    argument_parts: list[str] = []

    class Handler(AssistantEventHandler):  # type: ignore[misc]
        def on_tool_call_created(self, tool_call: Any) -> None:
            created.append(tool_call)

        def on_tool_call_delta(self, delta: Any, snapshot: Any) -> None:
            argument_parts.append(delta.function.arguments or "")

    with sdk.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=Handler()
    ) as stream:
        events = [e.event for e in stream]
        run = stream.get_final_run()
        steps = stream.get_final_run_steps()
    chunks = lambda text: -(-len(text) // 5)  # noqa: E731 - the fake sends 5-char fragments
    assert events == [
        *START, "thread.run.step.created", "thread.run.step.in_progress",
        *["thread.run.step.delta"] * (2 + chunks(paris) + chunks(rome)),
        "thread.run.requires_action"]
    assert run.status == "requires_action"
    assert [c.id for c in run.required_action.submit_tool_outputs.tool_calls] == [
        "call_paris", "call_rome"]
    assert [c.id for c in created] == ["call_paris", "call_rome"]
    assert [c.function.name for c in created] == ["get_weather", "get_weather"]
    assert "".join(argument_parts) == paris + rome
    snapshot_calls = steps[-1].step_details.tool_calls
    assert [c.function.arguments for c in snapshot_calls] == [paris, rome]

    with sdk.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id, run_id=run.id,
        tool_outputs=[{"tool_call_id": "call_paris", "output": "sunny"},
                      {"tool_call_id": "call_rome", "output": "sunny too"}],
    ) as stream:
        events = list(stream)
        final = stream.get_final_run()
    assert [e.event for e in events] == [
        "thread.run.step.completed", "thread.run.queued", "thread.run.in_progress",
        *MESSAGE_OPEN, *["thread.message.delta"] * 2, "thread.message.completed",
        "thread.run.step.completed", "thread.run.completed"]
    assert [c.function.output for c in events[0].data.step_details.tool_calls] == [
        "sunny", "sunny too"]
    assert final.id == run.id and final.status == "completed"
    assert [m["role"] for m in sent[-1]["messages"]][-2:] == ["tool", "tool"]


def test_create_and_run_stream_starts_with_the_thread(sdk: Any, script: list[Any]) -> None:
    script.append(Reply(text="Hi"))
    assistant = sdk.beta.assistants.create(model="fake-model")
    with sdk.beta.threads.create_and_run_stream(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "Hey"}]}
    ) as stream:
        events = list(stream)
        run = stream.get_final_run()
    assert [e.event for e in events[:2]] == ["thread.created", "thread.run.created"]
    assert events[0].data.id == run.thread_id and run.status == "completed"
    raw = list(sdk.beta.threads.create_and_run(assistant_id=assistant.id, stream=True))
    assert raw[0].event == "thread.created" and raw[-1].event == "thread.run.completed"


def test_cancel_while_streaming(sdk: Any, script: list[Any]) -> None:
    script.append(Reply(text="I will think about this for a", stall_seconds=30))
    assistant, thread = _setup(sdk)
    events: list[Any] = []
    with sdk.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id, stream=True
    ) as stream:
        for event in stream:
            events.append(event)
            if event.event == "thread.message.delta" and "".join(
                e.data.delta.content[0].text.value for e in events
                if e.event == "thread.message.delta") == "I will think about this for a":
                sdk.beta.threads.runs.cancel(events[0].data.id, thread_id=thread.id)
    names = [e.event for e in events]
    tail = names[names.index("thread.run.cancelling"):]
    assert tail == ["thread.run.cancelling", "thread.message.incomplete",
                    "thread.run.step.cancelled", "thread.run.cancelled"]
    message = events[names.index("thread.message.incomplete")].data
    assert message.incomplete_details.reason == "run_cancelled"
    stored = sdk.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    assert stored.status == "incomplete"
    assert stored.content[0].text.value == "I will think about this for a"
    run = sdk.beta.threads.runs.retrieve(events[0].data.id, thread_id=thread.id)
    assert run.status == "cancelled"


def test_backend_failure_fails_the_run_on_the_stream(sdk: Any, script: list[Any]) -> None:
    script.append(Reply(status=400))
    assistant, thread = _setup(sdk)
    events = list(sdk.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id, stream=True))
    assert [e.event for e in events] == [*START, "thread.run.failed"]
    assert events[-1].data.last_error.code == "invalid_prompt"
    assert events[-1].data.failed_at is not None


def test_backend_failure_mid_answer_fails_the_step_and_keeps_the_text(
    sdk: Any, script: list[Any]
) -> None:
    script.append(Reply(text="Half an ans", chunk_chars=20, garbled_after_text=True))
    assistant, thread = _setup(sdk)
    events = list(sdk.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id, stream=True))
    assert [e.event for e in events] == [
        *START, *MESSAGE_OPEN, "thread.message.delta", "thread.message.incomplete",
        "thread.run.step.failed", "thread.run.failed"]
    assert events[-2].data.last_error.code == "server_error"
    assert events[-3].data.content[0].text.value == "Half an ans"


def test_max_completion_tokens_ends_incomplete(sdk: Any, script: list[Any]) -> None:
    script.append(Reply(text="A long story that got cut", finish="length", chunk_chars=50))
    assistant, thread = _setup(sdk)
    events = list(sdk.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id, stream=True,
        max_completion_tokens=256))
    assert [e.event for e in events] == [
        *START, *MESSAGE_OPEN, "thread.message.delta", "thread.message.incomplete",
        "thread.run.step.completed", "thread.run.incomplete"]
    assert events[-3].data.incomplete_details.reason == "max_tokens"
    assert events[-1].data.incomplete_details.reason == "max_completion_tokens"


def test_errors_before_the_stream_are_plain_json(sdk: Any, script: list[Any]) -> None:
    import openai

    script.append(Reply(text="slow", hang_seconds=2))
    assistant, thread = _setup(sdk)
    sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    with (pytest.raises(openai.BadRequestError) as caught,
          sdk.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id)):
        pass
    assert "already has an active run" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id="asst_missing",
                                     stream=True)


def test_two_hundred_concurrent_streams(
    sdk: Any, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    assistant = sdk.beta.assistants.create(model="fake-model")
    threads = [sdk.beta.threads.create(messages=[{"role": "user", "content": f"n{i}"}])
               for i in range(200)]
    script.extend(Reply(text=f"answer number {i}", chunk_chars=3) for i in range(200))
    results: dict[str, tuple[str, str]] = {}
    errors: list[BaseException] = []

    def consume(thread_id: str) -> None:
        try:
            events = list(sdk.beta.threads.runs.create(
                thread_id=thread_id, assistant_id=assistant.id, stream=True))
            text = "".join(e.data.delta.content[0].text.value for e in events
                           if e.event == "thread.message.delta")
            results[thread_id] = (events[-1].event, text)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=consume, args=(t.id,)) for t in threads]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert not errors
    assert len(results) == 200
    assert {event for event, _ in results.values()} == {"thread.run.completed"}
    texts = sorted(text for _, text in results.values())
    asked = Counter(body["messages"][-1]["content"] for body in sent)
    assert len(sent) == 200, ("each run asks the model once; asked more than once: "
                              f"{[(q, n) for q, n in asked.items() if n > 1]}")
    assert texts == sorted(f"answer number {i}" for i in range(200))
    for thread in threads[:5]:
        stored = sdk.beta.threads.messages.list(thread.id).data[0].content[0].text.value
        assert stored == results[thread.id][1]


def test_polled_run_continued_as_a_stream(sdk: Any, script: list[Any]) -> None:
    """The tutorial's mix: create without streaming, then submit the outputs streaming."""
    script.append(Reply(tool_calls=[
        {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Beijing"}'}]))
    script.append(Reply(text="It is sunny in Beijing."))
    assistant, thread = _setup(sdk, tools=[TOOL])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20)
    assert run.status == "requires_action"
    events = list(sdk.beta.threads.runs.submit_tool_outputs(
        thread_id=thread.id, run_id=run.id, stream=True,
        tool_outputs=[{"tool_call_id": "call_1", "output": "sunny"}]))
    assert [e.event for e in events][:3] == [
        "thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"]
    assert events[-1].event == "thread.run.completed"
    text = "".join(e.data.delta.content[0].text.value for e in events
                   if e.event == "thread.message.delta")
    assert text == "It is sunny in Beijing."


async def test_async_client_and_async_event_handler(live_server: Any, script: list[Any]) -> None:
    import openai
    from openai import AsyncAssistantEventHandler

    script.append(Reply(text="Async all the way.", chunk_chars=6))
    sdk = openai.AsyncOpenAI(base_url=live_server.url + "/v1", api_key="sk-test", max_retries=0)
    assistant = await sdk.beta.assistants.create(model="fake-model")
    thread = await sdk.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    deltas: list[str] = []

    class Handler(AsyncAssistantEventHandler):  # type: ignore[misc]
        async def on_text_delta(self, delta: Any, snapshot: Any) -> None:
            deltas.append(delta.value)

    async with sdk.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=Handler()
    ) as stream:
        await stream.until_done()
        run = await stream.get_final_run()
    assert run.status == "completed" and "".join(deltas) == "Async all the way."
    await sdk.close()
