"""The gate every request passes: API keys, the beta header, body size, request ids."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import BETA


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"api_keys": ["sk-right"], "max_body_bytes": 2048}


async def test_missing_api_key_is_401_with_missing_api_key_code(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/assistants")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "missing_api_key"
    assert error["type"] == "invalid_request_error"


async def test_wrong_api_key_is_401_and_the_key_is_masked(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/assistants", headers={"Authorization": "Bearer sk-wrong-key-123456"}
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert "sk-wrong-key-123456" not in error["message"]
    assert "3456" in error["message"]


async def test_configured_api_key_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/assistants", headers={"Authorization": "Bearer sk-right"})
    assert response.status_code == 200


async def test_missing_beta_header_on_assistants_is_invalid_beta(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/v1/assistants", headers={"Authorization": "Bearer sk-right", "OpenAI-Beta": ""}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_beta"
    assert "OpenAI-Beta: assistants=v2" in error["message"]


async def test_beta_v1_header_is_refused_as_deprecated(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/threads", json={},
        headers={"Authorization": "Bearer sk-right", "OpenAI-Beta": "assistants=v1"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("The v1 Assistants API has been")


async def test_models_do_not_need_the_beta_header(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/models", headers={"Authorization": "Bearer sk-right", "OpenAI-Beta": ""}
    )
    assert response.status_code == 200


async def test_oversized_body_is_413_before_it_is_parsed(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/assistants",
        json={"model": "m", "instructions": "x" * 5000},
        headers={"Authorization": "Bearer sk-right", **BETA},
    )
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "request_too_large"
    assert "ASSISTANTS_MAX_BODY_BYTES" in error["message"]


async def test_oversized_chunked_body_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 1000

    response = await client.post(
        "/v1/assistants", content=chunks(),
        headers={"Authorization": "Bearer sk-right", "Content-Type": "application/json", **BETA},
    )
    assert response.status_code == 413


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    ok = await client.get("/v1/models", headers={"Authorization": "Bearer sk-right"})
    refused = await client.get("/v1/models")
    missing = await client.get("/v1/nothing-here", headers={"Authorization": "Bearer sk-right"})
    ids = {r.headers["x-request-id"] for r in (ok, refused, missing)}
    assert len(ids) == 3
    assert all(i.startswith("req_") and len(i) == 36 for i in ids)


async def test_unknown_route_is_a_404_in_the_error_envelope(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/nothing", headers={"Authorization": "Bearer sk-right"})
    assert response.status_code == 404
    assert response.json() == {"error": {
        "message": "Invalid URL (DELETE /v1/nothing)", "type": "invalid_request_error",
        "param": None, "code": None}}


async def test_a_bug_is_a_500_envelope_with_request_id_and_no_retry(
    settings: Any,
) -> None:
    from assistants_server.app import create_app

    app = create_app(settings)

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=transport, base_url="http://testserver"
    ) as http:
        response = await http.get("/v1/boom", headers={"Authorization": "Bearer sk-right"})
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert response.headers["x-should-retry"] == "false"
    request_id = response.headers["x-request-id"]
    assert request_id in response.json()["error"]["message"]
