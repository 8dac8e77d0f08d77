"""Assistants through the official SDK: every field, partial updates, pagination, errors."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.contract.sdk_errors import server_message

FUNCTION = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}


def test_create_returns_every_field_with_the_service_defaults(sdk: Any) -> None:
    assistant = sdk.beta.assistants.create(model="gpt-4o")
    assert assistant.id.startswith("asst_") and len(assistant.id) == 29
    assert assistant.object == "assistant"
    assert isinstance(assistant.created_at, int)
    assert (assistant.name, assistant.description, assistant.instructions) == (None, None, None)
    assert assistant.tools == [] and assistant.metadata == {}
    assert (assistant.temperature, assistant.top_p, assistant.response_format) == (1.0, 1.0, "auto")
    raw = sdk.beta.assistants.with_raw_response.retrieve(assistant.id).http_response.json()
    assert set(raw) >= {"id", "object", "created_at", "name", "description", "model",
                        "instructions", "tools", "tool_resources", "metadata", "temperature",
                        "top_p", "response_format"}


def test_create_keeps_tools_resources_and_settings(sdk: Any) -> None:
    data = sdk.files.create(file=("data.csv", b"x,y\n1,2\n"), purpose="assistants")
    assistant = sdk.beta.assistants.create(
        model="gpt-4o", name="Math Tutor", description="Helps with maths",
        instructions="You are a personal math tutor.",
        tools=[{"type": "code_interpreter"},
               {"type": "file_search", "file_search": {"max_num_results": 5}}, FUNCTION],
        tool_resources={"code_interpreter": {"file_ids": [data.id]}},
        metadata={"team": "maths"}, temperature=0.2, top_p=0.9,
        response_format={"type": "json_object"},
    )
    again = sdk.beta.assistants.retrieve(assistant.id)
    assert again == assistant
    assert [t.type for t in again.tools] == ["code_interpreter", "file_search", "function"]
    assert again.tools[1].file_search.max_num_results == 5
    assert again.tools[2].function.name == "get_weather"
    assert again.tools[2].function.parameters["required"] == ["city"]
    assert again.tool_resources.code_interpreter.file_ids == [data.id]
    assert (again.temperature, again.top_p) == (0.2, 0.9)
    assert again.response_format.type == "json_object"


def test_update_changes_only_the_fields_sent_and_null_clears(sdk: Any) -> None:
    assistant = sdk.beta.assistants.create(
        model="gpt-4o", name="Old", instructions="Be brief.", metadata={"a": "1"}
    )
    updated = sdk.beta.assistants.update(assistant.id, name=None, metadata={"b": "2"})
    assert updated.name is None
    assert updated.instructions == "Be brief."
    assert updated.metadata == {"a": "1", "b": "2"}  # merged: kit/metadata.py says why
    assert sdk.beta.assistants.retrieve(assistant.id).metadata == {"a": "1", "b": "2"}


def test_delete_then_retrieve_is_not_found(sdk: Any) -> None:
    assistant = sdk.beta.assistants.create(model="gpt-4o")
    deleted = sdk.beta.assistants.delete(assistant.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (assistant.id, "assistant.deleted",
                                                             True)
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.beta.assistants.retrieve(assistant.id)
    assert server_message(caught.value) == (
        f"No assistant found with id '{assistant.id}'."
    )


def test_auto_pagination_walks_every_item_in_both_orders(sdk: Any) -> None:
    created = [sdk.beta.assistants.create(model="gpt-4o", name=f"a{i}").id for i in range(7)]
    newest_first = [a.id for a in sdk.beta.assistants.list(limit=2)]
    oldest_first = [a.id for a in sdk.beta.assistants.list(limit=3, order="asc")]
    assert newest_first == created[::-1]
    assert oldest_first == created


def test_before_cursor_returns_the_previous_page(sdk: Any) -> None:
    created = [sdk.beta.assistants.create(model="gpt-4o").id for _ in range(6)]
    page = sdk.beta.assistants.list(order="asc", before=created[4], limit=2)
    assert [a.id for a in page.data] == created[2:4]
    assert page.has_more is True
    page = sdk.beta.assistants.list(order="desc", before=created[1], limit=10)
    assert [a.id for a in page.data] == created[:1:-1]
    assert page.has_more is False


def test_empty_list_has_null_cursors_and_no_more(sdk: Any) -> None:
    page = sdk.beta.assistants.list()
    assert (page.data, page.first_id, page.last_id, page.has_more) == ([], None, None, False)


@pytest.mark.parametrize(
    ("kwargs", "param", "code", "message"),
    [
        ({}, "model", "missing_required_parameter", "Missing required parameter: 'model'."),
        ({"model": "m", "name": "n" * 257}, "name", "string_above_max_length",
         "Invalid 'name': string too long. Expected a string with maximum length 256, "
         "but got a string with length 257 instead."),
        ({"model": "m", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata",
         "object_above_max_properties",
         "Invalid 'metadata': too many properties. Expected an object with at most 16 "
         "properties, but got an object with 17 properties instead."),
        ({"model": "m", "metadata": {"k" * 65: "v"}}, "metadata." + "k" * 65,
         "property_name_above_max_length", None),
        ({"model": "m", "metadata": {"k": "v" * 513}}, "metadata.k", "string_above_max_length",
         None),
        ({"model": "m", "temperature": 2.5}, "temperature", "decimal_above_max_value",
         "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
         "but got 2.5 instead."),
        ({"model": "m", "tools": [{"type": "function", "function": {"name": "bad name!"}}]},
         "tools[0].function.name", "invalid_value", None),
        ({"model": "m", "tools": [{"type": "function", "function": {
            "name": "f", "parameters": {"type": "string"}}}]},
         "tools[0].function.parameters", "invalid_function_parameters", None),
        ({"model": "m", "tools": [{"type": "browser"}]}, "tools[0].type", "invalid_value",
         "Invalid value: 'browser'. Supported values are: 'code_interpreter', 'file_search', "
         "'function'."),
        ({"model": "m", "tool_resources": {"file_search": {"vector_store_ids": ["a", "b"]}}},
         "tool_resources.file_search.vector_store_ids", "array_above_max_length", None),
        ({"model": "m", "response_format": {"type": "yaml"}}, "response_format.type",
         "invalid_value", None),
    ],
)
def test_invalid_create_is_a_bad_request_naming_the_parameter(
    sdk: Any, kwargs: dict[str, Any], param: str, code: str, message: str | None
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.assistants.create(**kwargs) if "model" in kwargs else sdk.post(
            "/assistants", body={}, cast_to=object,
            options={"headers": {"OpenAI-Beta": "assistants=v2"}})
    error = caught.value
    assert (error.status_code, error.param, error.code, error.type) == (
        400, param, code, "invalid_request_error")
    if message:
        assert server_message(error) == message
    assert error.request_id and error.request_id.startswith("req_")


def test_unknown_argument_is_refused_by_name(sdk: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.assistants.create(model="gpt-4o", extra_body={"temprature": 1})
    assert server_message(caught.value) == (
        "Unrecognized request argument supplied: temprature")


@pytest.mark.parametrize(("limit", "message"), [
    (0, "Invalid 'limit': integer below minimum value. Expected a value >= 1, but got 0 "
        "instead."),
    (101, "Invalid 'limit': integer above maximum value. Expected a value <= 100, but got 101 "
          "instead."),
])
def test_limit_out_of_range_is_a_bad_request(sdk: Any, limit: int, message: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.assistants.list(limit=limit)
    assert server_message(caught.value) == f"{message}"
    assert caught.value.param == "limit"


def test_order_must_be_asc_or_desc(sdk: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.assistants.list(order="sideways")
    assert caught.value.param == "order"
    assert "Supported values are: 'asc' or 'desc'" in server_message(caught.value)


def test_wrong_id_prefix_is_a_bad_request(sdk: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.assistants.retrieve("undefined")
    assert server_message(caught.value) == (
        "Invalid 'assistant_id': 'undefined'. Expected an ID that begins "
        "with 'asst'.")
    assert caught.value.param == "assistant_id"


def test_unknown_cursor_is_a_bad_request(sdk: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.assistants.list(after="asst_doesnotexist")
    assert caught.value.param == "after"


def test_inline_vector_stores_are_created_and_named_by_id(sdk: Any) -> None:
    file = sdk.files.create(file=("a.txt", b"Some notes."), purpose="assistants")
    assistant = sdk.beta.assistants.create(model="m", tool_resources={
        "file_search": {"vector_stores": [{"file_ids": [file.id]}]}})
    (store_id,) = assistant.tool_resources.file_search.vector_store_ids
    store = (sdk.vector_stores if hasattr(sdk, "vector_stores")
             else sdk.beta.vector_stores).retrieve(store_id)
    assert store.file_counts.total == 1
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.assistants.create(model="m", tool_resources={
            "file_search": {"vector_stores": [{"file_ids": ["file-missing"]}]}})
    assert "file-missing" in caught.value.message


def test_deleting_while_auto_paginating_visits_every_item(sdk: Any) -> None:
    for i in range(25):
        sdk.beta.assistants.create(model="m", name=f"a{i}")
    deleted = [sdk.beta.assistants.delete(a.id).id for a in sdk.beta.assistants.list(limit=10)]
    assert len(set(deleted)) == 25
    assert sdk.beta.assistants.list().data == []


def _nested_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    node = schema
    for _ in range(depth):
        node["properties"] = {"x": {"type": "object"}}
        node = node["properties"]["x"]
    return schema


@pytest.mark.parametrize("parameters", [{"type": "object", "$schema": 7}, _nested_schema(200)],
                         ids=["unreadable-$schema", "nested-200-deep"])
def test_unreadable_or_absurd_function_schemas_are_bad_requests(
    sdk: Any, parameters: dict[str, Any]
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.assistants.create(model="m", tools=[
            {"type": "function", "function": {"name": "f", "parameters": parameters}}])
    assert caught.value.code == "invalid_function_parameters"
