"""Thread behaviour in-process: deletion removes every row of the thread and nothing else."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from assistants_server.db.models import MessageRow


async def test_delete_removes_the_threads_messages_and_keeps_others(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    messages = [{"role": "user", "content": str(i)} for i in range(5)]
    doomed = (await client.post("/v1/threads", json={"messages": messages})).json()["id"]
    kept = (await client.post("/v1/threads", json={"messages": messages[:2]})).json()["id"]
    response = await client.delete(f"/v1/threads/{doomed}")
    assert response.json() == {"id": doomed, "object": "thread.deleted", "deleted": True}
    async with app.state.sessionmaker() as session:
        counts = dict((await session.execute(
            select(MessageRow.thread_id, func.count()).group_by(MessageRow.thread_id))).all())
    assert counts == {kept: 2}
    assert (await client.get(f"/v1/threads/{doomed}")).status_code == 404
    assert (await client.delete(f"/v1/threads/{doomed}")).status_code == 404


async def test_modify_without_metadata_leaves_it_alone(client: httpx.AsyncClient) -> None:
    thread = (await client.post("/v1/threads", json={"metadata": {"a": "1"}})).json()
    store = (await client.post("/v1/vector_stores", json={})).json()["id"]
    updated = (await client.post(f"/v1/threads/{thread['id']}", json={
        "tool_resources": {"file_search": {"vector_store_ids": [store]}}})).json()
    assert updated["metadata"] == {"a": "1"}
    assert updated["tool_resources"] == {"file_search": {"vector_store_ids": [store]}}
