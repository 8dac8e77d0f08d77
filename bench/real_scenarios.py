"""What bench/real_models.py asks of each public model, as a user's code would: each scenario
takes the SDK client and a model name and returns (worked, what happened)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
NOTES = (b"# Refund policy\n\nDamaged items get a full refund within 30 days of delivery. "
         b"Opened software is not refundable.\n")


def readme_example(client: openai.OpenAI, model: str) -> tuple[bool, str]:
    """The README's first SDK snippet: assistant, thread, messages, a polled run."""
    assistant = client.beta.assistants.create(
        model=model, name="Math Tutor", instructions="You are a personal math tutor.")
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Solve 3x + 11 = 14."}])
    client.beta.threads.messages.create(thread.id, role="user", content="Show your steps.")
    listed = [m.role for m in client.beta.threads.messages.list(thread.id, order="asc")]
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id,
                                                   assistant_id=assistant.id)
    answer = client.beta.threads.messages.list(thread.id).data[0].content[0].text.value
    ok = listed == ["user", "user"] and run.status == "completed" and bool(answer.strip())
    usage = run.usage.total_tokens if run.usage else None
    return ok, f"{run.status}, {usage} tokens: {answer.strip()[:80]!r}"


def function_call(client: openai.OpenAI, model: str) -> tuple[bool, str]:
    """A function the run must call (tool_choice names it), answered with
    submit_tool_outputs_and_poll."""
    assistant = client.beta.assistants.create(model=model, tools=[WEATHER])
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    if run.status != "requires_action" or run.required_action is None:
        error = run.last_error.message if run.last_error else ""
        return False, f"{run.status} instead of requires_action {error}".strip()
    calls = run.required_action.submit_tool_outputs.tool_calls
    arguments = [json.loads(call.function.arguments) for call in calls]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id, run_id=run.id, tool_outputs=[
            {"tool_call_id": call.id, "output": '{"sky": "sunny", "celsius": 22}'}
            for call in calls])
    answer = client.beta.threads.messages.list(thread.id).data[0].content[0].text.value
    error = run.last_error.message if run.last_error else ""
    return run.status == "completed", (f"called get_weather{arguments}, then {run.status}: "
                                       f"{(answer or error).strip()[:80]!r}")


def function_call_unforced(client: openai.OpenAI, model: str) -> tuple[bool, str]:
    """The same question with tool_choice auto: whether this model decides to call."""
    assistant = client.beta.assistants.create(model=model, tools=[WEATHER])
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "What is the weather in Paris? "
                              "Use the get_weather tool."}]})
    if run.status == "requires_action" and run.required_action is not None:
        call = run.required_action.submit_tool_outputs.tool_calls[0]
        client.beta.threads.runs.cancel(thread_id=run.thread_id, run_id=run.id)
        return True, f"called {call.function.name}({call.function.arguments})"
    error = run.last_error.message if run.last_error else ""
    return False, f"{run.status} without a call {error[:100]}".strip()


def streamed_answer(client: openai.OpenAI, model: str) -> tuple[bool, str]:
    """runs.stream with an AssistantEventHandler, as the README shows."""
    deltas: list[str] = []

    class Collect(openai.AssistantEventHandler):
        def on_text_delta(self, delta: Any, snapshot: Any) -> None:
            deltas.append(delta.value or "")

    assistant = client.beta.assistants.create(model=model)
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Tell me a two-line poem about the sea."}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id,
                                         event_handler=Collect()) as stream:
        stream.until_done()
        status = stream.get_final_run().status
    text = "".join(deltas)
    return status == "completed" and len(deltas) > 1, (
        f"{status}, {len(deltas)} deltas: {text.strip()[:80]!r}")


def file_search(client: openai.OpenAI, model: str) -> tuple[bool, str]:
    """A question about an uploaded file, through a vector store: the search runs (forced by
    tool_choice) and whether the answer cites the file."""
    stores = getattr(client, "vector_stores", None) or client.beta.vector_stores
    file = client.files.create(file=("refunds.md", NOTES), purpose="assistants")
    store = stores.create(name="Policies")
    stores.files.create_and_poll(vector_store_id=store.id, file_id=file.id)
    assistant = client.beta.assistants.create(
        model=model, tools=[{"type": "file_search"}],
        instructions="Answer from the files, citing them.",
        tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, tool_choice={"type": "file_search"},
        thread={"messages": [{"role": "user", "content": "How long do I have to get a refund "
                              "for a damaged item?"}]})
    steps = client.beta.threads.runs.steps.list(thread_id=run.thread_id, run_id=run.id)
    searched = any(step.type == "tool_calls" for step in steps.data)
    if run.status != "completed":
        error = run.last_error.message if run.last_error else ""
        return False, f"{run.status} (searched: {searched}) {error[:100]}"
    text = client.beta.threads.messages.list(run.thread_id).data[0].content[0].text
    cited = [a.type for a in text.annotations]
    return searched, (f"searched: {searched}, citations: {cited}, mentions 30 days: "
                      f"{'30' in text.value}: {text.value.strip()[:80]!r}")


SCENARIOS: list[tuple[str, Callable[[openai.OpenAI, str], tuple[bool, str]]]] = [
    ("README example (create_and_poll)", readme_example),
    ("function call (named tool_choice)", function_call),
    ("function call (tool_choice auto)", function_call_unforced),
    ("streamed answer (runs.stream)", streamed_answer),
    ("file_search question", file_search),
]
