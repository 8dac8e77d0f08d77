"""Runs through the official SDK's helpers: create_and_poll, function calling, cancel, steps."""

from __future__ import annotations

import json
from typing import Any

from tests.fake_backend import Reply


def test_create_and_poll_completes_with_the_models_answer(
    sdk: Any, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    script.append(Reply(text="x = 1", usage=(20, 4)))
    assistant = sdk.beta.assistants.create(model="fake-model", instructions="You do maths.")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Solve 3x+11=14"}])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed"
    assert run.usage.prompt_tokens == 20 and run.usage.total_tokens == 24
    assert run.started_at and run.completed_at and run.expires_at is None
    messages = list(sdk.beta.threads.messages.list(thread.id, order="asc"))
    assert [m.role for m in messages] == ["user", "assistant"]
    answer = messages[1]
    assert answer.content[0].text.value == "x = 1"
    assert (answer.assistant_id, answer.run_id, answer.status) == (
        assistant.id, run.id, "completed")
    assert sent[-1]["messages"] == [
        {"role": "system", "content": "You do maths."},
        {"role": "user", "content": "Solve 3x+11=14"}]
    steps = list(sdk.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id))
    assert [s.type for s in steps] == ["message_creation"]
    assert steps[0].step_details.message_creation.message_id == answer.id
    assert list(sdk.beta.threads.messages.list(thread.id, run_id=run.id))[0].id == answer.id


def test_function_calling_round_trip_with_parallel_calls(
    sdk: Any, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    tool = {"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}}}}}
    script.append(Reply(tool_calls=[
        {"id": "call_paris", "name": "get_weather", "arguments": json.dumps({"city": "Paris"})},
        {"id": "call_rome", "name": "get_weather", "arguments": json.dumps({"city": "Rome"})}]))
    script.append(Reply(text="Sunny in both."))
    assistant = sdk.beta.assistants.create(model="fake-model", tools=[tool])
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [c.id for c in calls] == ["call_paris", "call_rome"]
    assert json.loads(calls[1].function.arguments) == {"city": "Rome"}
    assert sent[-1]["tools"][0]["function"]["name"] == "get_weather"
    run = sdk.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, poll_interval_ms=50,
        tool_outputs=[{"tool_call_id": "call_paris", "output": "sunny"},
                      {"tool_call_id": "call_rome", "output": "sunny too"}])
    assert run.status == "completed"
    tool_messages = [m for m in sent[-1]["messages"] if m["role"] == "tool"]
    assert tool_messages == [
        {"role": "tool", "tool_call_id": "call_paris", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_rome", "content": "sunny too"}]
    steps = list(sdk.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id,
                                                  order="asc"))
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    assert [c.function.output for c in steps[0].step_details.tool_calls] == [
        "sunny", "sunny too"]


def test_create_and_run_poll_starts_a_new_thread(sdk: Any, script: list[Any]) -> None:
    script.append(Reply(text="Hi there"))
    assistant = sdk.beta.assistants.create(model="fake-model")
    run = sdk.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, poll_interval_ms=50,
        thread={"messages": [{"role": "user", "content": "Hello"}]})
    assert run.status == "completed"
    texts = [m.content[0].text.value for m in sdk.beta.threads.messages.list(
        run.thread_id, order="asc")]
    assert texts == ["Hello", "Hi there"]


def test_backend_failure_fails_the_run_with_what_the_backend_said(
    sdk: Any, script: list[Any]
) -> None:
    script.extend([Reply(status=400)])
    assistant = sdk.beta.assistants.create(model="fake-model")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "failed"
    assert run.last_error.code == "invalid_prompt"
    assert "fake failure 400" in run.last_error.message
    assert run.failed_at is not None


def test_runs_list_update_steps_retrieve_and_additional_messages(
    sdk: Any, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    script.extend([Reply(text="one"), Reply(text="two")])
    assistant = sdk.beta.assistants.create(model="fake-model")
    thread = sdk.beta.threads.create()
    first = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50,
        additional_messages=[{"role": "user", "content": "added"}], metadata={"try": "1"})
    second = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50,
        instructions="Override.", temperature=0.1)
    assert [r.id for r in sdk.beta.threads.runs.list(thread.id)] == [second.id, first.id]
    assert first.metadata == {"try": "1"}
    assert (second.instructions, second.temperature) == ("Override.", 0.1)
    assert sent[0]["messages"] == [{"role": "user", "content": "added"}]
    assert sent[1]["messages"][0] == {"role": "system", "content": "Override."}
    assert sent[1]["messages"][1:] == [{"role": "user", "content": "added"},
                                       {"role": "assistant", "content": "one"}]
    updated = sdk.beta.threads.runs.update(run_id=first.id, thread_id=thread.id,
                                           metadata={"try": "2"})
    assert updated.metadata == {"try": "2"}
    step = next(iter(sdk.beta.threads.runs.steps.list(run_id=first.id, thread_id=thread.id)))
    again = sdk.beta.threads.runs.steps.retrieve(step_id=step.id, run_id=first.id,
                                                 thread_id=thread.id)
    assert again.id == step.id and again.status == "completed" and again.usage.total_tokens


def test_cancel_through_the_sdk_and_a_terminal_run_refuses(sdk: Any, script: list[Any]) -> None:
    import openai
    import pytest

    from tests.contract.sdk_errors import server_message

    script.append(Reply(text="slow", hang_seconds=3))
    assistant = sdk.beta.assistants.create(model="fake-model")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    cancelled = sdk.beta.threads.runs.cancel(run_id=run.id, thread_id=thread.id)
    assert cancelled.status in ("cancelling", "cancelled")
    final = sdk.beta.threads.runs.poll(run.id, thread.id, poll_interval_ms=50)
    assert final.status == "cancelled"
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.threads.runs.cancel(run_id=run.id, thread_id=thread.id)
    assert server_message(caught.value) == "Cannot cancel run with status 'cancelled'."
