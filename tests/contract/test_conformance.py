"""Every response body of the implemented endpoints validates against the JSON schemas of the
OpenAPI spec (`assistants-openapi-2026.yaml`): the 200 schema the spec gives each operation, and
its ErrorResponse for 400/404. The schemas are read from the spec, not written here."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.contract.spec import Spec, load_spec, spec_path

IMPLEMENTED = [
    ("post", "/assistants"), ("get", "/assistants"),
    ("get", "/assistants/{assistant_id}"), ("post", "/assistants/{assistant_id}"),
    ("delete", "/assistants/{assistant_id}"),
    ("post", "/threads"), ("get", "/threads/{thread_id}"), ("post", "/threads/{thread_id}"),
    ("delete", "/threads/{thread_id}"),
    ("post", "/threads/{thread_id}/messages"), ("get", "/threads/{thread_id}/messages"),
    ("get", "/threads/{thread_id}/messages/{message_id}"),
    ("post", "/threads/{thread_id}/messages/{message_id}"),
    ("delete", "/threads/{thread_id}/messages/{message_id}"),
    ("post", "/files"), ("get", "/files"), ("get", "/files/{file_id}"),
    ("delete", "/files/{file_id}"),
]
FUNCTION = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city", "strict": True,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False}}}
FILE_SEARCH = {"type": "file_search", "file_search": {
    "max_num_results": 7, "ranking_options": {"ranker": "default_2024_08_21",
                                              "score_threshold": 0.5}}}
RESPONSE_FORMATS: list[Any] = [
    "auto", {"type": "text"}, {"type": "json_object"},
    {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    {"type": "json_schema", "json_schema": {
        "name": "answer", "description": "d", "strict": True,
        "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
]
CONTENTS: list[Any] = [
    "plain string",
    [{"type": "text", "text": "first part"}, {"type": "text", "text": "second part"}],
    [{"type": "image_file", "image_file": {"file_id": "file-img"}},
     {"type": "image_file", "image_file": {"file_id": "file-img2", "detail": "high"}}],
    [{"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
     {"type": "text", "text": "what is in these?"}],
]


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec(spec_path())


class Api:
    """Calls the app and checks each body against the spec before the test sees it."""

    def __init__(self, client: httpx.AsyncClient, spec: Spec) -> None:
        self.client, self.spec = client, spec

    async def __call__(
        self, method: str, template: str, *, status: int = 200, json: Any = None,
        params: dict[str, Any] | None = None, **ids: str,
    ) -> Any:
        url = self.spec.prefix + template.format(**ids)
        response = await self.client.request(method.upper(), url, json=json, params=params)
        where = f"{method.upper()} {url} {params or ''}"
        assert response.status_code == status, f"{where}: {response.status_code} {response.text}"
        assert response.headers["content-type"].startswith("application/json"), where
        body = response.json()
        if status == 200:
            problems = self.spec.response_problems(method, template, body)
        else:
            problems = self.spec.error_problems(body)
        assert not problems, f"{where} does not match the spec:\n" + "\n".join(problems)
        return body


@pytest.fixture
def api(client: httpx.AsyncClient, spec: Spec) -> Api:
    return Api(client, spec)


async def walk_pages(api: Api, template: str, order: str, **ids: Any) -> list[str]:
    """Page through a list two at a time with `after`, then back with `before`."""
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2, "order": order}
    while True:
        page = await api("get", template, params=params, **ids)
        seen += [item["id"] for item in page["data"]]
        if not page["has_more"]:
            break
        params = {**params, "after": page["last_id"]}
    back = await api("get", template, params={"limit": 2, "order": order, "before": seen[-1]},
                     **ids)
    assert [item["id"] for item in back["data"]] == seen[-3:-1]
    return seen


def test_every_implemented_operation_has_a_json_response_schema_in_the_spec(spec: Spec) -> None:
    for method, template in IMPLEMENTED:
        assert spec.response_pointer(method, template)
    assert spec.validator("/components/schemas/ErrorResponse").schema


async def tool_resources(api: Api) -> dict[str, Any]:
    """Resources naming two uploaded files and a store, which must exist (in the project)."""
    store = await api("post", "/vector_stores", json={})
    return {"code_interpreter": {"file_ids": [await upload(api, "a.csv"),
                                              await upload(api, "b.csv")]},
            "file_search": {"vector_store_ids": [store["id"]]}}


async def test_assistant_objects_match_the_spec(api: Api) -> None:
    empty = await api("get", "/assistants")
    assert empty["data"] == [] and empty["has_more"] is False
    resources = await tool_resources(api)
    rich = await api("post", "/assistants", json={
        "model": "gpt-4o", "name": "Tutor", "description": "Helps", "instructions": "Be kind.",
        "tools": [{"type": "code_interpreter"}, FILE_SEARCH, FUNCTION,
                  {"type": "file_search"}],
        "tool_resources": resources, "metadata": {"team": "maths", "tier": "2"},
        "temperature": 0.2, "top_p": 0.9, "reasoning_effort": "low",
        "response_format": {"type": "json_object"},
    })
    assert rich["tools"][1] == FILE_SEARCH and rich["tool_resources"] == resources
    created = [rich, await api("post", "/assistants", json={"model": "gpt-4o"})]
    for response_format in RESPONSE_FORMATS:
        created.append(await api("post", "/assistants", json={
            "model": "gpt-4o-mini", "response_format": response_format}))
    for assistant in created:
        await api("get", "/assistants/{assistant_id}", assistant_id=assistant["id"])
    aid = rich["id"]
    changes: list[dict[str, Any]] = [
        {"name": None, "description": None, "instructions": None},
        {"tools": [FUNCTION], "tool_resources": None, "metadata": {}},
        {"temperature": None, "top_p": None, "response_format": None},
        {"tool_resources": {"code_interpreter": {"file_ids": []}}},
        {"model": "gpt-4.1", "response_format": RESPONSE_FORMATS[3]}]
    for change in changes:
        await api("post", "/assistants/{assistant_id}", json=change, assistant_id=aid)
    ids = {a["id"] for a in created}
    assert set(await walk_pages(api, "/assistants", "asc")) == ids
    assert set(await walk_pages(api, "/assistants", "desc")) == ids
    past_end = await api("get", "/assistants", params={"order": "asc", "after": created[-1]["id"]})
    assert past_end["data"] == []
    deleted = await api("delete", "/assistants/{assistant_id}", assistant_id=aid)
    assert deleted == {"id": aid, "object": "assistant.deleted", "deleted": True}


async def upload(api: Api, name: str = "doc.txt") -> str:
    response = await api.client.post("/v1/files", data={"purpose": "assistants"},
                                     files={"file": (name, b"Some text to search.")})
    return str(response.json()["id"])


async def test_thread_objects_match_the_spec(api: Api) -> None:
    bare = await api("post", "/threads", json={})
    resources = await tool_resources(api)
    full = await api("post", "/threads", json={
        "messages": [{"role": "user", "content": content} for content in CONTENTS]
        + [{"role": "assistant", "content": "noted", "metadata": {"k": "v"},
            "attachments": [{"file_id": await upload(api),
                             "tools": [{"type": "file_search"}]}]}],
        "metadata": {"user": "42"}, "tool_resources": resources,
    })
    assert full["tool_resources"] == resources
    for thread in (bare, full):
        await api("get", "/threads/{thread_id}", thread_id=thread["id"])
    changes: list[dict[str, Any]] = [
        {"metadata": {"a": "1"}}, {"tool_resources": {"file_search": {}}},
        {"tool_resources": None, "metadata": None}, {}]
    for change in changes:
        await api("post", "/threads/{thread_id}", json=change, thread_id=full["id"])
    listed = await api("get", "/threads/{thread_id}/messages", thread_id=full["id"])
    assert len(listed["data"]) == len(CONTENTS) + 1
    for thread in (bare, full):
        deleted = await api("delete", "/threads/{thread_id}", thread_id=thread["id"])
        assert deleted == {"id": thread["id"], "object": "thread.deleted", "deleted": True}


async def test_message_objects_match_the_spec(api: Api) -> None:
    tid = (await api("post", "/threads", json={}))["id"]
    empty = await api("get", "/threads/{thread_id}/messages", thread_id=tid)
    assert empty["data"] == [] and empty["has_more"] is False
    messages = "/threads/{thread_id}/messages"
    one = "/threads/{thread_id}/messages/{message_id}"
    created = [await api("post", messages, thread_id=tid, json={
        "role": "user", "content": content}) for content in CONTENTS]
    created.append(await api("post", messages, thread_id=tid, json={
        "role": "user", "content": "Summarise the files", "metadata": {"source": "test"},
        "attachments": [
            {"file_id": await upload(api), "tools": [{"type": "file_search"}]},
            {"file_id": await upload(api, "data.csv"), "tools": [
                {"type": "code_interpreter"}, {"type": "file_search"}]},
            {"file_id": "file-bare"}]}))
    created.append(await api("post", messages, thread_id=tid, json={
        "role": "assistant", "content": [{"type": "text", "text": "Here you go."}]}))
    for message in created:
        await api("get", one, thread_id=tid, message_id=message["id"])
    mid = created[-2]["id"]
    changes: list[dict[str, Any]] = [{"metadata": {"seen": "yes"}}, {"metadata": None}, {}]
    for change in changes:
        await api("post", one, json=change, thread_id=tid, message_id=mid)
    ids = [m["id"] for m in created]
    assert await walk_pages(api, messages, "asc", thread_id=tid) == ids
    assert await walk_pages(api, messages, "desc", thread_id=tid) == ids[::-1]
    by_run = await api("get", messages, params={"run_id": "run_none"}, thread_id=tid)
    assert by_run["data"] == [] and by_run["first_id"] is None
    past_end = await api("get", messages, params={"after": ids[0]}, thread_id=tid)
    assert past_end["data"] == []
    deleted = await api("delete", one, thread_id=tid, message_id=mid)
    assert deleted == {"id": mid, "object": "thread.message.deleted", "deleted": True}


async def test_vector_store_objects_match_the_spec(api: Api) -> None:
    file_id = await upload(api)
    store = await api("post", "/vector_stores", json={
        "name": "docs", "file_ids": [file_id], "metadata": {"k": "v"},
        "expires_after": {"anchor": "last_active_at", "days": 3}})
    sid = store["id"]
    await api("get", "/vector_stores/{vector_store_id}", vector_store_id=sid)
    await api("post", "/vector_stores/{vector_store_id}", vector_store_id=sid,
              json={"name": "renamed", "expires_after": None})
    await api("get", "/vector_stores")
    files = "/vector_stores/{vector_store_id}/files"
    await api("get", files, vector_store_id=sid, params={"filter": "in_progress"})
    one = "/vector_stores/{vector_store_id}/files/{file_id}"
    await api("get", one, vector_store_id=sid, file_id=file_id)
    await api("post", one, vector_store_id=sid, file_id=file_id,
              json={"attributes": {"year": 2025, "draft": False}})
    batch = await api("post", "/vector_stores/{vector_store_id}/file_batches",
                      vector_store_id=sid, json={"file_ids": [await upload(api)]})
    batch_path = "/vector_stores/{vector_store_id}/file_batches/{batch_id}"
    await api("get", batch_path, vector_store_id=sid, batch_id=batch["id"])
    await api("post", batch_path + "/cancel", vector_store_id=sid, batch_id=batch["id"])
    await api("get", batch_path + "/files", vector_store_id=sid, batch_id=batch["id"])
    await api("post", "/vector_stores/{vector_store_id}/search", vector_store_id=sid,
              json={"query": "text", "max_num_results": 3})
    await api("get", one + "/content", vector_store_id=sid, file_id=file_id)
    detached = await api("delete", one, vector_store_id=sid, file_id=file_id)
    assert detached == {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}
    deleted = await api("delete", "/vector_stores/{vector_store_id}", vector_store_id=sid)
    assert deleted == {"id": sid, "object": "vector_store.deleted", "deleted": True}


async def test_error_bodies_match_the_spec_error_response(api: Api) -> None:
    tid = (await api("post", "/threads", json={}))["id"]
    cases: list[tuple[str, str, int, dict[str, Any]]] = [
        ("get", "/assistants/{assistant_id}", 404, {"assistant_id": "asst_missing"}),
        ("post", "/assistants/{assistant_id}", 404,
         {"assistant_id": "asst_missing", "json": {"name": "x"}}),
        ("delete", "/assistants/{assistant_id}", 404, {"assistant_id": "asst_missing"}),
        ("get", "/assistants/{assistant_id}", 400, {"assistant_id": "thread_wrongkind"}),
        ("get", "/threads/{thread_id}", 404, {"thread_id": "thread_missing"}),
        ("delete", "/threads/{thread_id}", 404, {"thread_id": "thread_missing"}),
        ("get", "/threads/{thread_id}/messages", 404, {"thread_id": "thread_missing"}),
        ("get", "/threads/{thread_id}/messages/{message_id}", 404,
         {"thread_id": tid, "message_id": "msg_missing"}),
        ("get", "/assistants", 400, {"params": {"limit": 0}}),
        ("get", "/assistants", 400, {"params": {"limit": 101}}),
        ("get", "/assistants", 400, {"params": {"order": "sideways"}}),
        ("get", "/assistants", 400, {"params": {"after": "asst_unknown"}}),
        ("get", "/threads/{thread_id}/messages", 400, {"thread_id": tid, "params": {"limit": 0}}),
        ("post", "/assistants", 400, {"json": {"name": "no model"}}),
        ("post", "/assistants", 400, {"json": {"model": "gpt-4o", "temperature": 3}}),
        ("post", "/assistants", 400, {"json": {"model": "gpt-4o", "tools": [{"type": "x"}]}}),
        ("post", "/threads/{thread_id}/messages", 400,
         {"thread_id": tid, "json": {"role": "system", "content": "hi"}}),
    ]
    for method, template, status, kwargs in cases:
        body = await api(method, template, status=status, **kwargs)
        assert body["error"]["type"] == "invalid_request_error"


async def test_file_objects_match_the_spec(
    api: Api, client: httpx.AsyncClient, spec: Spec
) -> None:
    response = await client.post(spec.prefix + "/files", data={
        "purpose": "assistants", "expires_after[anchor]": "created_at",
        "expires_after[seconds]": "7200"},
        files={"file": ("a.pdf", b"%PDF-1.4", "application/pdf")})
    assert response.status_code == 200
    uploaded = response.json()
    assert not spec.response_problems("post", "/files", uploaded)
    await api("get", "/files/{file_id}", file_id=uploaded["id"])
    await api("get", "/files", params={"purpose": "assistants", "limit": 5})
    await api("delete", "/files/{file_id}", file_id=uploaded["id"])
    await api("get", "/files/{file_id}", status=404, file_id=uploaded["id"])
