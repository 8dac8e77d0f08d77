"""Bad values are 400s naming the field, never 500s and never stored altered: unpaired
surrogates anywhere (keys too), integers beyond any limit, and values of the wrong type that
a lax parser would have taken (`"stream": "yes"`, `"temperature": "1"`)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    # ensure_ascii: a lone surrogate travels as the \\ud800 escape, as clients send it
    return await client.post(path, content=json.dumps(body, ensure_ascii=True),
                             headers={"content-type": "application/json"})


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "gpt-4o", "name": "x\ud800y"}, "name"),
    ({"model": "gpt-4o", "metadata": {"k\ud800": "v"}}, "metadata"),
    ({"model": "gpt-4o", "metadata": {"k": "v\udfff"}}, "metadata.k"),
    ({"model": "gpt-4o", "temperature": "1"}, "temperature"),
    ({"model": "gpt-4o", "top_p": True}, "top_p"),
])
async def test_bad_assistant_values_are_400s(
    client: httpx.AsyncClient, body: dict[str, Any], param: str
) -> None:
    response = await _post(client, "/v1/assistants", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert (await client.get("/v1/assistants")).json()["data"] == []  # nothing stored


@pytest.mark.parametrize(("extra", "param"), [
    ({"stream": "yes"}, "stream"),
    ({"max_completion_tokens": 2**63}, "max_completion_tokens"),
    ({"max_prompt_tokens": 2**63}, "max_prompt_tokens"),
    ({"temperature": "0.5"}, "temperature"),
])
async def test_bad_run_values_are_400s(
    client: httpx.AsyncClient, extra: dict[str, Any], param: str
) -> None:
    assistant = (await client.post("/v1/assistants", json={"model": "gpt-4o"})).json()
    thread = (await client.post("/v1/threads", json={})).json()
    response = await _post(client, f"/v1/threads/{thread['id']}/runs",
                           {"assistant_id": assistant["id"], **extra})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize(("resources", "param"), [
    ({"file_search": {"vector_store_ids": ["file-abc"]}},
     "tool_resources.file_search.vector_store_ids[0]"),
    ({"code_interpreter": {"file_ids": ["file-ok", "vs_abc"]}},
     "tool_resources.code_interpreter.file_ids[1]"),
    ({"file_search": {"vector_stores": [{"file_ids": ["thread_x"]}]}},
     "tool_resources.file_search.vector_stores[0].file_ids[0]"),
])
async def test_ids_of_the_wrong_kind_in_tool_resources_are_400s(
    client: httpx.AsyncClient, resources: dict[str, Any], param: str
) -> None:
    for path, body in (("/v1/assistants", {"model": "gpt-4o", "tool_resources": resources}),
                       ("/v1/threads", {"tool_resources": resources})):
        response = await _post(client, path, body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == param and "Expected an ID that begins with" in error["message"]


@pytest.mark.parametrize("url", ["/v1/threads/thread_%00abc", "/v1/assistants?after=asst_%00x",
                                 "/v1/files/file-%00x", "/v1/vector_stores/vs_%00/files"])
async def test_a_nul_in_an_id_or_cursor_is_a_400(client: httpx.AsyncClient, url: str) -> None:
    response = await client.get(url)
    assert response.status_code == 400, response.text
    assert "NUL" in response.json()["error"]["message"]
