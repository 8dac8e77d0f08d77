"""Message behaviour in-process: run_id filtering, concurrent writers, stored content shape."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from assistants_server.db.models import MessageRow
from assistants_server.db.tenancy import DEFAULT_PROJECT


async def _thread(client: httpx.AsyncClient) -> str:
    response = await client.post("/v1/threads", json={})
    return str(response.json()["id"])


async def test_run_id_filter_returns_only_that_runs_messages(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    thread_id = await _thread(client)
    await client.post(f"/v1/threads/{thread_id}/messages", json={"role": "user", "content": "q"})
    async with app.state.sessionmaker() as session:
        for i, run_id in enumerate(["run_a", "run_b", "run_a"]):
            session.add(MessageRow(project_id=DEFAULT_PROJECT, 
                id=f"msg_run{i:021d}", created_at=1, thread_id=thread_id, role="assistant",
                content=[], status="completed", attachments=[], metadata_={},
                assistant_id="asst_x", run_id=run_id))
        await session.commit()
    page = (await client.get(f"/v1/threads/{thread_id}/messages",
                             params={"run_id": "run_a", "order": "asc"})).json()
    assert [m["id"] for m in page["data"]] == [f"msg_run{0:021d}", f"msg_run{2:021d}"]
    assert {m["run_id"] for m in page["data"]} == {"run_a"}
    everything = (await client.get(f"/v1/threads/{thread_id}/messages")).json()["data"]
    assert len(everything) == 4


async def test_concurrent_creates_all_land_in_one_consistent_order(
    client: httpx.AsyncClient,
) -> None:
    thread_id = await _thread(client)

    async def create(i: int) -> str:
        response = await client.post(f"/v1/threads/{thread_id}/messages",
                                     json={"role": "user", "content": f"m{i}"})
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    created = set(await asyncio.gather(*(create(i) for i in range(40))))
    asc: list[str] = []
    after = None
    while True:
        params = {"order": "asc", "limit": 7, **({"after": after} if after else {})}
        page = (await client.get(f"/v1/threads/{thread_id}/messages", params=params)).json()
        asc += [m["id"] for m in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    desc = [m["id"] for m in (await client.get(
        f"/v1/threads/{thread_id}/messages", params={"limit": 100})).json()["data"]]
    assert set(asc) == created and len(asc) == 40
    assert desc == asc[::-1]


async def test_text_part_is_stored_as_value_with_annotations(client: httpx.AsyncClient) -> None:
    thread_id = await _thread(client)
    message = (await client.post(f"/v1/threads/{thread_id}/messages", json={
        "role": "user", "content": [{"type": "text", "text": "hi"}]})).json()
    assert message["content"] == [{"type": "text", "text": {"value": "hi", "annotations": []}}]
    assert message["completed_at"] is None and message["incomplete_details"] is None
