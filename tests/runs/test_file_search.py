"""The file_search tool in runs, through the official SDK over a real socket: the cookbook's
flow on a PDF made here (upload, vector store, assistant, run), the search executed by the
server, citations as `file_citation` annotations, the step's results with `include[]`,
streaming, message attachments, and a search beside a function call."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF

from tests.fake_backend import Reply

REPORT = ("Zorblax Industries annual report. Quarterly revenue reached 42 million dollars in "
          "the third quarter, driven by sales of the Quasar vacuum cleaner.")
OTHER = "The office cafeteria serves lunch from noon until two in the afternoon."


def stores(sdk: Any) -> Any:
    return sdk.vector_stores if hasattr(sdk, "vector_stores") else sdk.beta.vector_stores


def indexed(sdk: Any, store_id: str, seconds: float = 20.0) -> Any:
    """The store once every file of it is indexed, which must happen within `seconds`."""
    deadline = time.monotonic() + seconds
    while (store := stores(sdk).retrieve(store_id)).status == "in_progress":
        assert time.monotonic() < deadline, f"{store_id} still indexing after {seconds} s"
        time.sleep(0.05)
    assert store.status == "completed" and store.file_counts.failed == 0, store
    return store


def make_pdf(path: Path, *pages: str) -> Path:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def search_call(query: str, call_id: str = "call_fs1") -> Reply:
    return Reply(tool_calls=[{"id": call_id, "name": "file_search",
                              "arguments": json.dumps({"queries": [query]})}])


def cookbook_setup(sdk: Any, tmp_path: Path) -> tuple[Any, Any, Any]:
    """The cookbook's steps, unchanged: upload a PDF, put it in a vector store, attach it."""
    with make_pdf(tmp_path / "report.pdf", OTHER, REPORT).open("rb") as handle:
        file = sdk.files.create(file=handle, purpose="assistants")
    vector_store = stores(sdk).create(name="Reports")
    vector_store_file = stores(sdk).files.create_and_poll(
        vector_store_id=vector_store.id, file_id=file.id)
    assert vector_store_file.status == "completed", vector_store_file.last_error
    assistant = sdk.beta.assistants.create(
        model="fake-model", instructions="Answer from the files.",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [vector_store.id]}})
    assert assistant.tool_resources.file_search.vector_store_ids == [vector_store.id]
    return file, vector_store, assistant


def test_cookbook_file_search_answers_with_a_citation(
    sdk: Any, script: list[Any], sent: list[dict[str, Any]], tmp_path: Path
) -> None:
    file, _, assistant = cookbook_setup(sdk, tmp_path)
    script += [search_call("Zorblax quarterly revenue"),
               Reply(text="Revenue was 42 million dollars【0:0†report.pdf】.")]
    thread = sdk.beta.threads.create(
        messages=[{"role": "user", "content": "What was Zorblax's quarterly revenue?"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error

    offered = sent[0]["tools"]
    assert [t["function"]["name"] for t in offered] == ["file_search"]
    shown = sent[1]["messages"][-1]
    assert shown["role"] == "tool" and shown["tool_call_id"] == "call_fs1"
    assert shown["content"].startswith("【0:0†report.pdf】") and "42 million" in shown["content"]

    answer = sdk.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0]
    text = answer.content[0].text
    assert text.value == "Revenue was 42 million dollars【0:0†report.pdf】."
    (citation,) = text.annotations
    assert citation.type == "file_citation" and citation.file_citation.file_id == file.id
    assert text.value[citation.start_index:citation.end_index] == citation.text
    assert citation.text == "【0:0†report.pdf】"

    steps = sdk.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    tool_step, message_step = steps.data
    (call,) = tool_step.step_details.tool_calls
    assert tool_step.status == "completed" and call.type == "file_search" and call.id == "call_fs1"
    (result,) = call.file_search.results
    assert (result.file_id, result.file_name) == (file.id, "report.pdf") and result.score > 0
    assert result.content is None  # only with include[]
    assert "_model" not in tool_step.model_dump()["step_details"]["tool_calls"][0]
    included = sdk.beta.threads.runs.steps.retrieve(
        step_id=tool_step.id, thread_id=thread.id, run_id=run.id,
        include=["step_details.tool_calls[*].file_search.results[*].content"])
    content = included.step_details.tool_calls[0].file_search.results[0].content
    assert "42 million" in content[0].text
    assert message_step.step_details.message_creation.message_id == answer.id


def test_streamed_search_shows_the_tool_call_and_the_annotation(
    sdk: Any, script: list[Any], tmp_path: Path
) -> None:
    file, _, assistant = cookbook_setup(sdk, tmp_path)
    script += [search_call("revenue"),
               Reply(text="It was 42 million【0:0†report.pdf】, per the report.", chunk_chars=3)]
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Revenue?"}])
    with sdk.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        events = list(stream)
        final = stream.get_final_messages()
    names = [e.event for e in events]
    assert names[:5] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress",
                         "thread.run.step.created", "thread.run.step.in_progress"]
    tool_delta = next(e.data for e in events if e.event == "thread.run.step.delta")
    (part,) = tool_delta.delta.step_details.tool_calls
    assert (part.type, part.id, part.index) == ("file_search", "call_fs1", 0)
    step_done = next(e.data for e in events if e.event == "thread.run.step.completed")
    assert step_done.step_details.tool_calls[0].file_search.results[0].file_id == file.id
    assert step_done.step_details.tool_calls[0].file_search.results[0].content is None
    annotated = [e.data.delta.content[0].text.annotations for e in events
                 if e.event == "thread.message.delta" and e.data.delta.content[0].text.annotations]
    assert len(annotated) == 1 and annotated[0][0].file_citation.file_id == file.id
    assert annotated[0][0].index == 0
    assert names[-1] == "thread.run.completed"
    (message,) = final
    assert message.content[0].text.annotations[0].start_index == len("It was 42 million")


def test_a_run_created_with_include_streams_the_results_content(
    sdk: Any, script: list[Any], tmp_path: Path
) -> None:
    _, _, assistant = cookbook_setup(sdk, tmp_path)
    script += [search_call("revenue"), Reply(text="42 million【0:0†report.pdf】.")]
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Revenue?"}])
    events = list(sdk.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id, stream=True,
        include=["step_details.tool_calls[*].file_search.results[*].content"]))
    step_done = next(e.data for e in events if e.event == "thread.run.step.completed")
    (result,) = step_done.step_details.tool_calls[0].file_search.results
    assert result.content is not None and "42 million" in result.content[0].text
    assert events[-1].event == "thread.run.completed"


def test_message_attachment_makes_the_threads_vector_store(
    sdk: Any, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    file = sdk.files.create(file=("notes.txt", REPORT.encode()), purpose="assistants")
    assistant = sdk.beta.assistants.create(model="fake-model", tools=[{"type": "file_search"}])
    thread = sdk.beta.threads.create(messages=[{
        "role": "user", "content": "Summarise the attached notes.",
        "attachments": [{"file_id": file.id, "tools": [{"type": "file_search"}]}]}])
    (store_id,) = thread.tool_resources.file_search.vector_store_ids
    store = stores(sdk).retrieve(store_id)
    assert store.expires_after.days == 7 and store.file_counts.total == 1
    indexed(sdk, store_id)
    script += [search_call("Quasar vacuum"), Reply(text="Done.")]
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    assert "Quasar" in sent[1]["messages"][-1]["content"]


def test_search_beside_a_function_call_waits_for_the_function_output(
    sdk: Any, script: list[Any], sent: list[dict[str, Any]], tmp_path: Path
) -> None:
    _, vector_store, _ = cookbook_setup(sdk, tmp_path)
    assistant = sdk.beta.assistants.create(
        model="fake-model", tools=[{"type": "file_search"}, {"type": "function", "function": {
            "name": "convert", "parameters": {"type": "object", "properties": {}}}}],
        tool_resources={"file_search": {"vector_store_ids": [vector_store.id]}})
    script += [Reply(tool_calls=[
        {"id": "call_fs", "name": "file_search", "arguments": '{"queries": ["revenue"]}'},
        {"id": "call_fn", "name": "convert", "arguments": "{}"}]),
        Reply(text="About 39 million euros.")]
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "In euros?"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    waiting = run.required_action.submit_tool_outputs.tool_calls
    assert [c.id for c in waiting] == ["call_fn"]
    run = sdk.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id, run_id=run.id,
        tool_outputs=[{"tool_call_id": "call_fn", "output": "0.93"}])
    assert run.status == "completed"
    tools = [m for m in sent[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tools] == ["call_fs", "call_fn"]
    assert "42 million" in tools[0]["content"] and tools[1]["content"] == "0.93"


def test_a_run_without_vector_stores_tells_the_model(
    sdk: Any, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    assistant = sdk.beta.assistants.create(model="fake-model", tools=[{"type": "file_search"}])
    script += [search_call("anything"), Reply(text="I found nothing.")]
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Search."}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    assert sent[1]["messages"][-1]["content"] == "No files are available to search."


@pytest.mark.parametrize("rounds", [11])
def test_a_model_that_searches_forever_is_stopped(
    sdk: Any, script: list[Any], rounds: int
) -> None:
    assistant = sdk.beta.assistants.create(model="fake-model", tools=[{"type": "file_search"}])
    script += [search_call("again", f"call_{i}") for i in range(rounds)]
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Loop."}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "failed" and "rounds" in run.last_error.message


def test_a_forced_search_is_forced_once_then_the_model_answers(
    sdk: Any, script: list[Any], sent: list[dict[str, Any]], tmp_path: Path
) -> None:
    _, _, assistant = cookbook_setup(sdk, tmp_path)
    script += [search_call("revenue"), Reply(text="42 million.")]
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Revenue?"}])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice={"type": "file_search"})
    assert run.status == "completed"
    assert sent[0]["tool_choice"] == {"type": "function", "function": {"name": "file_search"}}
    assert sent[1]["tool_choice"] == "auto"

