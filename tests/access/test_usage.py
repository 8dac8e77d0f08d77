"""Usage per project: the tokens of every run's model calls, bucketed by time and grouped by
project and model, in the shape of OpenAI's completions usage."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.access.test_admin_api import ADMIN, bearer, conforms, new_project
from tests.conftest import LiveServer
from tests.fake_backend import Reply


@pytest.fixture
def settings_overrides(backend: LiveServer) -> dict[str, Any]:
    return {"backend_base_url": backend.url + "/v1", "admin_keys": [ADMIN],
            "key_cache_seconds": 0}


async def _runs(client: httpx.AsyncClient, key: str, count: int) -> list[dict[str, Any]]:
    auth = bearer(key)
    assistant = (await client.post("/v1/assistants", headers=auth,
                                   json={"model": "fake-model"})).json()
    done = []
    for _ in range(count):
        run = (await client.post("/v1/threads/runs", headers=auth, json={
            "assistant_id": assistant["id"],
            "thread": {"messages": [{"role": "user", "content": "count my tokens"}]}})).json()
        deadline = time.monotonic() + 10
        while run["status"] != "completed":
            assert time.monotonic() < deadline, run
            await asyncio.sleep(0.05)
            run = (await client.get(f"/v1/threads/{run['thread_id']}/runs/{run['id']}",
                                    headers=auth)).json()
        done.append(run)
    return done


async def test_usage_is_counted_per_project_and_model(
    client: httpx.AsyncClient, script: list[Any],
) -> None:
    script.extend([Reply(text="a fairly short answer")] * 3)
    project_a, key_a = await new_project(client, "A")
    project_b, key_b = await new_project(client, "B")
    runs = {project_a: await _runs(client, key_a, 2), project_b: await _runs(client, key_b, 1)}
    start = int(time.time()) - 3600
    answer = await client.get("/v1/organization/usage/completions", headers=bearer(),
                              params={"start_time": start, "bucket_width": "1h", "limit": 2,
                                      "group_by": ["project_id", "model"]})
    assert answer.status_code == 200, answer.text
    conforms("UsageResponse", answer.json())
    results = [r for bucket in answer.json()["data"] for r in bucket["results"]]
    for project_id, made in runs.items():
        [mine] = [r for r in results if r["project_id"] == project_id]
        assert mine["model"] == "fake-model" and mine["num_model_requests"] == len(made)
        assert mine["input_tokens"] == sum(r["usage"]["prompt_tokens"] for r in made) > 0
        assert mine["output_tokens"] == sum(r["usage"]["completion_tokens"] for r in made) > 0
    only_b = await client.get("/v1/organization/usage/completions", headers=bearer(),
                              params={"start_time": start, "bucket_width": "1h", "limit": 2,
                                      "project_ids": [project_b]})
    [total] = [r for bucket in only_b.json()["data"] for r in bucket["results"]]
    assert total["project_id"] is None and total["num_model_requests"] == 1
    refused = await client.get("/v1/organization/usage/completions", headers=bearer(key_a),
                               params={"start_time": start})
    assert refused.status_code == 401


async def test_bad_usage_parameters_are_400s_naming_them(client: httpx.AsyncClient) -> None:
    for params, param in (({"start_time": 0, "bucket_width": "1d", "limit": 32}, "limit"),
                          ({"start_time": 0, "group_by": ["user_id"]}, "group_by"),
                          ({"start_time": 0, "page": "nope"}, "page"),
                          ({"bucket_width": "1d"}, "start_time")):
        answer = await client.get("/v1/organization/usage/completions", headers=bearer(),
                                  params=params)
        assert answer.status_code == 400, (params, answer.text)
        assert answer.json()["error"]["param"] == param
