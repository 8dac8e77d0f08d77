"""Threads and messages through the official SDK."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.contract.sdk_errors import server_message


def test_thread_created_with_messages_keeps_their_order_and_content(sdk: Any) -> None:
    thread = sdk.beta.threads.create(
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": [{"type": "text", "text": "second"}]},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "image_file", "image_file": {"file_id": "file-abc", "detail": "low"}},
            ]},
        ],
        metadata={"user": "42"},
    )
    assert thread.id.startswith("thread_") and thread.metadata == {"user": "42"}
    messages = list(sdk.beta.threads.messages.list(thread.id, order="asc"))
    assert [m.role for m in messages] == ["user", "assistant", "user"]
    assert messages[0].content[0].text.value == "first"
    assert messages[0].content[0].text.annotations == []
    assert messages[1].content[0].text.value == "second"
    assert messages[2].content[0].image_url.url == "https://example.com/a.png"
    assert messages[2].content[0].image_url.detail == "auto"
    assert messages[2].content[1].image_file.file_id == "file-abc"
    assert messages[2].content[1].image_file.detail == "low"
    assert all(m.thread_id == thread.id and m.status == "completed" for m in messages)
    assert all(m.assistant_id is None and m.run_id is None for m in messages)


def test_empty_thread_create_sends_an_empty_object(sdk: Any) -> None:
    thread = sdk.beta.threads.create()
    assert sdk.beta.threads.retrieve(thread.id) == thread
    assert list(sdk.beta.threads.messages.list(thread.id)) == []


def test_thread_update_merges_metadata_and_replaces_tool_resources(sdk: Any) -> None:
    thread = sdk.beta.threads.create(metadata={"a": "1"})
    data = sdk.files.create(file=("data.csv", b"x,y\n1,2\n"), purpose="assistants")
    updated = sdk.beta.threads.update(
        thread.id, metadata={"b": "2"},
        tool_resources={"code_interpreter": {"file_ids": [data.id]}},
    )
    assert updated.metadata == {"a": "1", "b": "2"}  # kit/metadata.py says why
    assert updated.tool_resources.code_interpreter.file_ids == [data.id]


def test_deleting_a_thread_deletes_its_messages(sdk: Any) -> None:
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    message = next(iter(sdk.beta.threads.messages.list(thread.id)))
    deleted = sdk.beta.threads.delete(thread.id)
    assert (deleted.object, deleted.deleted) == ("thread.deleted", True)
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    assert server_message(caught.value) == f"No thread found with id '{thread.id}'."
    with pytest.raises(openai.NotFoundError):
        sdk.beta.threads.messages.list(thread.id)


def test_message_create_records_attachments_and_metadata(sdk: Any) -> None:
    thread = sdk.beta.threads.create()
    file = sdk.files.create(file=("doc.txt", b"A document."), purpose="assistants")
    message = sdk.beta.threads.messages.create(
        thread.id, role="user", content="Summarise the file",
        attachments=[{"file_id": file.id, "tools": [{"type": "file_search"}]}],
        metadata={"source": "test"},
    )
    assert message.attachments[0].file_id == file.id
    assert message.attachments[0].tools[0].type == "file_search"
    assert sdk.beta.threads.messages.retrieve(message.id, thread_id=thread.id) == message


def test_message_update_changes_metadata_only(sdk: Any) -> None:
    thread = sdk.beta.threads.create()
    message = sdk.beta.threads.messages.create(thread.id, role="user", content="hi")
    updated = sdk.beta.threads.messages.update(
        message.id, thread_id=thread.id, metadata={"seen": "yes"}
    )
    assert updated.metadata == {"seen": "yes"}
    assert updated.content == message.content


def test_message_delete(sdk: Any) -> None:
    thread = sdk.beta.threads.create()
    message = sdk.beta.threads.messages.create(thread.id, role="user", content="hi")
    deleted = sdk.beta.threads.messages.delete(message.id, thread_id=thread.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (
        message.id, "thread.message.deleted", True)
    assert list(sdk.beta.threads.messages.list(thread.id)) == []


def test_messages_with_equal_timestamps_page_exactly_in_both_orders(sdk: Any) -> None:
    thread = sdk.beta.threads.create(
        messages=[{"role": "user", "content": str(i)} for i in range(25)]
    )
    asc = [m.content[0].text.value for m in sdk.beta.threads.messages.list(
        thread.id, order="asc", limit=4)]
    desc = [m.content[0].text.value for m in sdk.beta.threads.messages.list(thread.id, limit=3)]
    assert asc == [str(i) for i in range(25)]
    assert desc == asc[::-1]


def test_run_id_filter_selects_messages_of_that_run(sdk: Any) -> None:
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    assert list(sdk.beta.threads.messages.list(thread.id, run_id="run_none")) == []
    assert len(list(sdk.beta.threads.messages.list(thread.id))) == 1


def test_message_in_unknown_thread_is_not_found(sdk: Any) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.beta.threads.messages.create("thread_missing", role="user", content="hi")
    assert server_message(caught.value) == "No thread found with id 'thread_missing'."


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"role": "system", "content": "hi"}, "role"),
    ({"role": "user", "content": ""}, "content"),
    ({"role": "user", "content": []}, "content"),
    ({"role": "user", "content": [{"type": "audio", "audio": {}}]}, "content[0].type"),
    ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]},
     "content[0].image_url.url"),
    ({"role": "user", "content": "hi", "attachments": [{"tools": []}]}, "attachments[0].file_id"),
])
def test_invalid_message_is_a_bad_request_naming_the_parameter(
    sdk: Any, kwargs: dict[str, Any], param: str
) -> None:
    thread = sdk.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.threads.messages.create(thread.id, **kwargs)
    assert caught.value.param == param
    assert caught.value.type == "invalid_request_error"


def test_invalid_initial_message_names_its_index(sdk: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.threads.create(messages=[{"role": "user", "content": "ok"},
                                          {"role": "user", "content": "x", "metadata": {
                                              "k": "v" * 600}}])
    assert caught.value.param == "messages[1].metadata.k"


def test_code_interpreter_attachment_is_shared_with_the_threads_tool(sdk: Any) -> None:
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "use it",
        "attachments": [{"file_id": "file-csv", "tools": [{"type": "code_interpreter"}]}]}])
    sdk.beta.threads.messages.create(thread.id, role="user", content="and this", attachments=[
        {"file_id": "file-two", "tools": [{"type": "code_interpreter"}]},
        {"file_id": "file-csv", "tools": [{"type": "code_interpreter"}]}])
    resources = sdk.beta.threads.retrieve(thread.id).tool_resources
    assert resources.code_interpreter.file_ids == ["file-csv", "file-two"]


def test_message_in_an_unknown_thread_reports_the_thread(sdk: Any) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.beta.threads.messages.retrieve("msg_abc", thread_id="thread_gone")
    assert server_message(caught.value) == "No thread found with id 'thread_gone'."


def test_malformed_run_id_filter_is_a_bad_request(sdk: Any) -> None:
    thread = sdk.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.threads.messages.list(thread.id, run_id="foo")
    assert caught.value.param == "run_id"


def test_a_thread_starts_with_at_most_32_messages(sdk: Any) -> None:
    """The hosted service's bound (one request of 20,000 messages stalled every other)."""
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": str(i)}
                                               for i in range(32)])
    assert len(list(sdk.beta.threads.messages.list(thread.id, limit=100))) == 32
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.threads.create(messages=[{"role": "user", "content": str(i)}
                                          for i in range(33)])
    assert caught.value.param == "messages"
