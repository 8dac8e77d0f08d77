"""Assistant rules in-process: a model cannot be cleared, nulls restore defaults."""

from __future__ import annotations

import httpx


async def _assistant(client: httpx.AsyncClient) -> str:
    response = await client.post("/v1/assistants", json={"model": "m", "temperature": 0.5})
    return str(response.json()["id"])


async def test_model_cannot_be_cleared(client: httpx.AsyncClient) -> None:
    assistant_id = await _assistant(client)
    response = await client.post(f"/v1/assistants/{assistant_id}", json={"model": None})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "model"


async def test_null_temperature_restores_the_default(client: httpx.AsyncClient) -> None:
    assistant_id = await _assistant(client)
    response = await client.post(f"/v1/assistants/{assistant_id}", json={"temperature": None})
    assert response.json()["temperature"] == 1.0


async def test_empty_modify_changes_nothing(client: httpx.AsyncClient) -> None:
    assistant_id = await _assistant(client)
    before = (await client.get(f"/v1/assistants/{assistant_id}")).json()
    after = (await client.post(f"/v1/assistants/{assistant_id}", json={})).json()
    assert after == before


async def test_json_schema_response_format_round_trips_with_its_schema_key(
    client: httpx.AsyncClient,
) -> None:
    fmt = {"type": "json_schema", "json_schema": {
        "name": "answer", "schema": {"type": "object", "properties": {"x": {"type": "number"}}},
        "strict": True}}
    created = (await client.post("/v1/assistants", json={"model": "m", "response_format": fmt}))
    assert created.json()["response_format"] == fmt
