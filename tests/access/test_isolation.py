"""Tenant isolation: project A's key, given project B's ids, in a path or inside a body, on every
endpoint of the API, is answered exactly as for ids that exist nowhere, and B's objects are
left as they were. A route added without a case here fails `test_every_route_is_covered`."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest

from assistants_server.app import create_app
from tests.access.test_admin_api import ADMIN, bearer, new_project
from tests.conftest import LiveServer, make_settings
from tests.fake_backend import Reply

KINDS = {"assistant_id": "asst_", "thread_id": "thread_", "message_id": "msg_",
         "run_id": "run_", "step_id": "step_", "file_id": "file-", "vector_store_id": "vs_",
         "batch_id": "vsfb_"}
MISSING = {name: prefix + "Z" * 24 for name, prefix in KINDS.items()}
SUBMIT = {"tool_outputs": [{"tool_call_id": "call_x", "output": "1"}]}

# (method, path, body): every operation whose path names an object.
PATH_CASES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/assistants/{assistant_id}", None),
    ("POST", "/v1/assistants/{assistant_id}", {"name": "taken"}),
    ("DELETE", "/v1/assistants/{assistant_id}", None),
    ("GET", "/v1/files/{file_id}", None),
    ("DELETE", "/v1/files/{file_id}", None),
    ("GET", "/v1/files/{file_id}/content", None),
    ("GET", "/v1/threads/{thread_id}", None),
    ("POST", "/v1/threads/{thread_id}", {"metadata": {"taken": "yes"}}),
    ("DELETE", "/v1/threads/{thread_id}", None),
    ("GET", "/v1/threads/{thread_id}/messages", None),
    ("POST", "/v1/threads/{thread_id}/messages", {"role": "user", "content": "hi"}),
    ("GET", "/v1/threads/{thread_id}/messages/{message_id}", None),
    ("POST", "/v1/threads/{thread_id}/messages/{message_id}", {"metadata": {"t": "1"}}),
    ("DELETE", "/v1/threads/{thread_id}/messages/{message_id}", None),
    ("GET", "/v1/threads/{thread_id}/runs", None),
    ("POST", "/v1/threads/{thread_id}/runs", {"assistant_id": "{assistant_id}"}),
    ("POST", "/v1/threads/{thread_id}/runs", {"assistant_id": "{mine_assistant}"}),
    ("POST", "/v1/threads/{thread_id}/runs", {"assistant_id": "{mine_assistant}",
                                              "stream": True}),
    ("GET", "/v1/threads/{thread_id}/runs/{run_id}", None),
    ("POST", "/v1/threads/{thread_id}/runs/{run_id}", {"metadata": {"t": "1"}}),
    ("POST", "/v1/threads/{thread_id}/runs/{run_id}/cancel", None),
    ("GET", "/v1/threads/{thread_id}/runs/{run_id}/events", None),
    ("GET", "/v1/threads/{thread_id}/runs/{run_id}/steps", None),
    ("GET", "/v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}", None),
    ("POST", "/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", SUBMIT),
    ("POST", "/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
     {**SUBMIT, "stream": True}),
    ("GET", "/v1/vector_stores/{vector_store_id}", None),
    ("POST", "/v1/vector_stores/{vector_store_id}", {"name": "taken"}),
    ("DELETE", "/v1/vector_stores/{vector_store_id}", None),
    ("POST", "/v1/vector_stores/{vector_store_id}/file_batches", {"file_ids": ["{file_id}"]}),
    ("GET", "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}", None),
    ("POST", "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel", None),
    ("GET", "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/files", None),
    ("GET", "/v1/vector_stores/{vector_store_id}/files", None),
    ("POST", "/v1/vector_stores/{vector_store_id}/files", {"file_id": "{file_id}"}),
    ("GET", "/v1/vector_stores/{vector_store_id}/files/{file_id}", None),
    ("POST", "/v1/vector_stores/{vector_store_id}/files/{file_id}", {"attributes": {"a": "1"}}),
    ("DELETE", "/v1/vector_stores/{vector_store_id}/files/{file_id}", None),
    ("GET", "/v1/vector_stores/{vector_store_id}/files/{file_id}/content", None),
    ("POST", "/v1/vector_stores/{vector_store_id}/search", {"query": "notes"}),
]
RESOURCES = {"file_search": {"vector_store_ids": ["{vector_store_id}"]},
             "code_interpreter": {"file_ids": ["{file_id}"]}}
ATTACHED = {"role": "user", "content": "see",
            "attachments": [{"file_id": "{file_id}", "tools": [{"type": "file_search"}]}]}
# (method, path, body): operations that take the other project's ids in their body; `mine`
# names A's own objects in the path.
BODY_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/assistants", {"model": "fake-model", "tool_resources": RESOURCES,
                                "tools": [{"type": "file_search"},
                                          {"type": "code_interpreter"}]}),
    ("POST", "/v1/assistants/{mine_assistant}", {"tool_resources": RESOURCES}),
    ("POST", "/v1/threads", {"messages": [ATTACHED]}),
    ("POST", "/v1/threads", {"tool_resources": RESOURCES}),
    ("POST", "/v1/threads/{mine_thread}", {"tool_resources": RESOURCES}),
    ("POST", "/v1/threads/{mine_thread}/messages", ATTACHED),
    ("POST", "/v1/threads/{mine_thread}/runs", {"assistant_id": "{assistant_id}"}),
    ("POST", "/v1/threads/{mine_thread}/runs",
     {"assistant_id": "{mine_assistant}", "additional_messages": [ATTACHED]}),
    ("POST", "/v1/threads/runs", {"assistant_id": "{assistant_id}"}),
    ("POST", "/v1/threads/runs", {"assistant_id": "{mine_assistant}",
                                  "tool_resources": RESOURCES}),
    ("POST", "/v1/vector_stores", {"file_ids": ["{file_id}"]}),
    ("POST", "/v1/vector_stores/{mine_store}/files", {"file_id": "{file_id}"}),
    ("POST", "/v1/vector_stores/{mine_store}/file_batches", {"file_ids": ["{file_id}"]}),
]
# Lists and creations that name no id: checked by what A's lists show.
LISTED = [("GET", "/v1/assistants"), ("GET", "/v1/threads"), ("GET", "/v1/files"),
          ("GET", "/v1/vector_stores"), ("POST", "/v1/files")]
UNOWNED = ("/v1/models", "/v1/chat/completions", "/v1/embeddings")


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], value)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _blind(text: str, ids: dict[str, str]) -> str:
    """The answer with the ids it was asked about replaced by their names."""
    for name, value in ids.items():
        text = text.replace(value, "{" + name + "}")
    return re.sub(r"req_[0-9a-f]+", "req", text)


async def _ask(http: httpx.AsyncClient, key: str, method: str, path: str, body: Any,
               ids: dict[str, str]) -> tuple[int, str]:
    response = await http.request(method, _fill(path, ids), headers=bearer(key),
                                  json=_fill(body, ids))
    return response.status_code, _blind(response.text, ids)


async def _settled(http: httpx.AsyncClient, auth: dict[str, str], path: str, what: str) -> None:
    """Wait until the object at `path` is completed, so B's snapshots compare settled state."""
    deadline = time.monotonic() + 20
    while (await http.get(path, headers=auth)).json()["status"] != "completed":
        assert time.monotonic() < deadline, f"B's {what} did not complete"
        await asyncio.sleep(0.05)


async def _world(http: httpx.AsyncClient, key: str) -> dict[str, str]:
    """A project's objects of every kind: a file, a store holding it, a batch, an assistant
    using both, a thread with a message, a completed run and its step."""
    auth = bearer(key)
    files = [(await http.post("/v1/files", headers=auth, data={"purpose": "assistants"},
                              files={"file": (f"notes{n}.txt", b"secret notes of B")})).json()
             for n in (1, 2)]
    store = (await http.post("/v1/vector_stores", headers=auth,
                             json={"file_ids": [files[0]["id"]]})).json()
    batch = (await http.post(f"/v1/vector_stores/{store['id']}/file_batches", headers=auth,
                             json={"file_ids": [files[1]["id"]]})).json()
    ids = {"file_id": files[0]["id"], "vector_store_id": store["id"], "batch_id": batch["id"]}
    assistant = (await http.post("/v1/assistants", headers=auth, json={
        "model": "fake-model", "name": "B's", "tools": [{"type": "file_search"}],
        "tool_resources": _fill({"file_search": RESOURCES["file_search"]}, ids)})).json()
    thread = (await http.post("/v1/threads", headers=auth, json={
        "messages": [{"role": "user", "content": "B's secret question"}]})).json()
    run = (await http.post(f"/v1/threads/{thread['id']}/runs", headers=auth,
                           json={"assistant_id": assistant["id"]})).json()
    await _settled(http, auth, f"/v1/threads/{thread['id']}/runs/{run['id']}", "run")
    await _settled(http, auth, f"/v1/vector_stores/{store['id']}", "store's indexing")
    [step] = (await http.get(f"/v1/threads/{thread['id']}/runs/{run['id']}/steps",
                             headers=auth)).json()["data"]
    [message, *_] = (await http.get(f"/v1/threads/{thread['id']}/messages?order=asc",
                                    headers=auth)).json()["data"]
    return {**ids, "assistant_id": assistant["id"], "thread_id": thread["id"],
            "run_id": run["id"], "step_id": step["id"], "message_id": message["id"]}


async def _snapshot(http: httpx.AsyncClient, key: str, ids: dict[str, str]) -> list[Any]:
    auth = bearer(key)
    paths = ["/v1/assistants", "/v1/files", "/v1/vector_stores", "/v1/threads",
             f"/v1/assistants/{ids['assistant_id']}", f"/v1/threads/{ids['thread_id']}",
             f"/v1/threads/{ids['thread_id']}/messages",
             f"/v1/threads/{ids['thread_id']}/runs",
             f"/v1/vector_stores/{ids['vector_store_id']}/files",
             f"/v1/files/{ids['file_id']}/content"]
    return [(await http.get(path, headers=auth)).text for path in paths]


@pytest.fixture
def settings_overrides(backend: LiveServer) -> dict[str, Any]:
    return {"backend_base_url": backend.url + "/v1", "admin_keys": [ADMIN],
            "key_cache_seconds": 0, "file_search_wait_seconds": 0}


async def test_no_project_reads_or_writes_anothers_objects(
    client: httpx.AsyncClient, script: list[Any],
) -> None:
    _, key_a = await new_project(client, "A")
    _, key_b = await new_project(client, "B")
    script.extend([Reply(text="B's answer")] * 3)
    theirs = await _world(client, key_b)
    before = await _snapshot(client, key_b, theirs)
    auth_a = bearer(key_a)
    mine = {
        "mine_assistant": (await client.post("/v1/assistants", headers=auth_a,
                                             json={"model": "fake-model"})).json()["id"],
        "mine_thread": (await client.post("/v1/threads", headers=auth_a, json={})).json()["id"],
        "mine_store": (await client.post("/v1/vector_stores", headers=auth_a,
                                         json={})).json()["id"]}
    for method, path, body in PATH_CASES:
        got = await _ask(client, key_a, method, path, body, {**theirs, **mine})
        missing = await _ask(client, key_a, method, path, body, {**MISSING, **mine})
        assert got[0] == 404 and got == missing, (method, path, got, missing)
    for method, path, body in BODY_CASES:
        got = await _ask(client, key_a, method, path, body, {**theirs, **mine})
        missing = await _ask(client, key_a, method, path, body, {**MISSING, **mine})
        assert got[0] in (400, 404) and got == missing, (method, path, got, missing)
    for _, path in LISTED[:-1]:
        listed = (await client.get(path, headers=auth_a)).text
        assert not any(value in listed for value in theirs.values()), path
    assert await _snapshot(client, key_b, theirs) == before  # nothing of B's changed


async def test_every_route_is_covered(tmp_path: Any) -> None:
    [settings] = make_settings("sqlite", tmp_path)
    document = create_app(settings).openapi()
    covered = {(m, p) for m, p, _ in PATH_CASES} | {(m, p) for m, p, _ in BODY_CASES
                                                   if "{mine" not in p} | set(LISTED)
    routes = {(method.upper(), path) for path, item in document["paths"].items()
              for method in item if path.startswith("/v1/")
              and not path.startswith(("/v1/organization", *UNOWNED))}
    assert routes - covered == set(), "routes without an isolation case"
