"""A project's limits on a model (requests and tokens per minute, requests per day) and on its
active runs: 429 `rate_limit_exceeded` in OpenAI's words and headers, counted in the database so
that two processes on one database share them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from assistants_server.config import Settings
from tests.access.test_admin_api import ADMIN, bearer, conforms, new_project
from tests.conftest import BETA, LiveServer, running
from tests.fake_backend import Reply

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}


@pytest.fixture
def settings_overrides(backend: LiveServer) -> dict[str, Any]:
    return {"backend_base_url": backend.url + "/v1", "admin_keys": [ADMIN],
            "key_cache_seconds": 0, "models": ["fake-model"]}


async def _limit(client: httpx.AsyncClient, project_id: str, **limits: int) -> None:
    answer = await client.post(
        f"/v1/organization/projects/{project_id}/rate_limits/rl-fake-model", json=limits,
        headers=bearer())
    assert answer.status_code == 200, answer.text
    conforms("ProjectRateLimit", answer.json())


async def _start(client: httpx.AsyncClient, key: str, assistant_id: str) -> httpx.Response:
    return await client.post("/v1/threads/runs", headers=bearer(key), json={
        "assistant_id": assistant_id, "thread": {"messages": [{"role": "user",
                                                               "content": "hello"}]}})


async def _assistant(client: httpx.AsyncClient, key: str, **extra: Any) -> str:
    made = await client.post("/v1/assistants", headers=bearer(key),
                             json={"model": "fake-model", **extra})
    return str(made.json()["id"])


async def _settled(client: httpx.AsyncClient, key: str, run: dict[str, Any]) -> None:
    deadline = time.monotonic() + 10
    while run["status"] in ("queued", "in_progress"):
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.05)
        run = (await client.get(f"/v1/threads/{run['thread_id']}/runs/{run['id']}",
                                headers=bearer(key))).json()


async def test_requests_per_minute_are_refused_past_the_limit_with_openais_headers(
    client: httpx.AsyncClient, script: list[Any],
) -> None:
    script.extend([Reply(text="hi")] * 3)
    project_id, key = await new_project(client)
    other_id, other_key = await new_project(client, "other")
    await _limit(client, project_id, max_requests_per_1_minute=2)
    assistant = await _assistant(client, key)
    for _ in range(2):
        assert (await _start(client, key, assistant)).status_code == 200
    refused = await _start(client, key, assistant)
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert "requests per min (RPM): Limit 2, Used 2" in error["message"]
    assert refused.headers["x-ratelimit-limit-requests"] == "2"
    assert int(refused.headers["retry-after"]) <= 60
    # Nothing of the refused run was kept, and another project is not limited by this one.
    threads = (await client.get("/v1/threads", headers=bearer(key))).json()["data"]
    assert len(threads) == 2
    assert (await _start(client, other_key, await _assistant(client, other_key))
            ).status_code == 200
    listed = await client.get(f"/v1/organization/projects/{project_id}/rate_limits",
                              headers=bearer())
    conforms("ProjectRateLimitListResponse", listed.json())
    assert listed.json()["data"][0]["max_requests_per_1_minute"] == 2
    assert other_id != project_id


async def test_tokens_per_minute_count_the_calls_made(
    client: httpx.AsyncClient, script: list[Any],
) -> None:
    script.extend([Reply(text="a long answer", usage=(300, 200))] * 2)
    project_id, key = await new_project(client)
    await _limit(client, project_id, max_tokens_per_1_minute=400)
    assistant = await _assistant(client, key)
    first = await _start(client, key, assistant)
    await _settled(client, key, first.json())
    refused = await _start(client, key, assistant)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["type"] == "tokens"
    assert "tokens per min (TPM): Limit 400, Used 500" in refused.json()["error"]["message"]


async def test_limits_hold_across_processes(
    client: httpx.AsyncClient, settings: Settings, script: list[Any],
) -> None:
    script.extend([Reply(text="hi")] * 4)
    project_id, key = await new_project(client)
    await _limit(client, project_id, max_requests_per_1_minute=3)
    assistant = await _assistant(client, key)
    async with running(settings, BETA, "http://second") as second:
        answers = [await _start(http, key, assistant)
                   for http in (client, second, client, second)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]


async def test_active_runs_are_capped(client: httpx.AsyncClient, script: list[Any]) -> None:
    script.extend([Reply(tool_calls=[{"id": "call_1", "name": "get_weather",
                                      "arguments": '{"city": "Paris"}'}]), Reply(text="x")])
    project_id, key = await new_project(client)
    capped = await client.post(f"/v1/organization/projects/{project_id}",
                               json={"max_active_runs": 1}, headers=bearer())
    assert capped.json()["max_active_runs"] == 1
    assistant = await _assistant(client, key, tools=[WEATHER])
    waiting = (await _start(client, key, assistant)).json()  # stops in requires_action
    deadline = time.monotonic() + 10
    while waiting["status"] != "requires_action":
        assert time.monotonic() < deadline, waiting
        await asyncio.sleep(0.05)
        waiting = (await client.get(f"/v1/threads/{waiting['thread_id']}/runs/"
                                    f"{waiting['id']}", headers=bearer(key))).json()
    refused = await _start(client, key, assistant)
    assert refused.status_code == 429 and "max_active_runs" in refused.json()["error"]["message"]
    await client.post(f"/v1/threads/{waiting['thread_id']}/runs/{waiting['id']}/cancel",
                      headers=bearer(key))
    assert (await _start(client, key, assistant)).status_code == 200
