"""A request creates at most 32 messages, the hosted service's bound: a thread created with
20,000 once held the server for seconds."""

from __future__ import annotations

import httpx

HELLO = {"role": "user", "content": "hello"}


async def test_at_most_32_messages_per_request(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/threads", json={"messages": [HELLO] * 32})).status_code == 200
    too_many = await client.post("/v1/threads", json={"messages": [HELLO] * 33})
    assert too_many.status_code == 400
    assert too_many.json()["error"]["param"] == "messages"
    assert "maximum length 32" in too_many.json()["error"]["message"]
    assistant = (await client.post("/v1/assistants", json={"model": "gpt-4o"})).json()
    thread = (await client.post("/v1/threads", json={})).json()
    run = await client.post(f"/v1/threads/{thread['id']}/runs", json={
        "assistant_id": assistant["id"], "additional_messages": [HELLO] * 33})
    assert run.status_code == 400 and run.json()["error"]["param"] == "additional_messages"
    both = await client.post("/v1/threads/runs", json={
        "assistant_id": assistant["id"], "thread": {"messages": [HELLO] * 33}})
    assert both.status_code == 400 and both.json()["error"]["param"] == "thread.messages"
