"""Browsers can call the API when the operator allows their origin: the preflight is answered
before the key and beta-header checks (a browser sends neither on it); other origins, and every
origin when the setting is unset, are refused."""

from __future__ import annotations

from pathlib import Path

import httpx

from assistants_server.app import create_app
from tests.conftest import make_settings

APP = "https://app.example.com"
PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type, openai-beta"}


async def _client(tmp_path: Path, **overrides: object) -> tuple[httpx.AsyncClient, object]:
    [settings] = make_settings("sqlite", tmp_path, api_keys=["sk-team"], **overrides)
    app = create_app(settings)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url="http://testserver"), app


async def test_an_allowed_origin_gets_its_preflight_and_its_answer(tmp_path: Path) -> None:
    client, app = await _client(tmp_path, cors_origins=[APP])
    async with app.router.lifespan_context(app), client:  # type: ignore[attr-defined]
        preflight = await client.options("/v1/assistants", headers={"Origin": APP, **PREFLIGHT})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == APP
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "openai-beta"} <= {
            h.strip() for h in allowed.split(",")}
        created = await client.post("/v1/assistants", json={"model": "gpt-4o"}, headers={
            "Origin": APP, "Authorization": "Bearer sk-team", "OpenAI-Beta": "assistants=v2"})
        assert created.status_code == 200
        assert created.headers["access-control-allow-origin"] == APP
        assert "x-request-id" in created.headers["access-control-expose-headers"]


async def test_other_origins_are_refused(tmp_path: Path) -> None:
    client, app = await _client(tmp_path, cors_origins=[APP])
    async with app.router.lifespan_context(app), client:  # type: ignore[attr-defined]
        preflight = await client.options("/v1/assistants", headers={
            "Origin": "https://evil.example", **PREFLIGHT})
        assert preflight.status_code == 400
        assert "access-control-allow-origin" not in preflight.headers


async def test_without_the_setting_browsers_are_refused(tmp_path: Path) -> None:
    client, app = await _client(tmp_path)
    async with app.router.lifespan_context(app), client:  # type: ignore[attr-defined]
        preflight = await client.options("/v1/assistants", headers={"Origin": APP, **PREFLIGHT})
        assert preflight.status_code != 200
        assert "access-control-allow-origin" not in preflight.headers
        actual = await client.get("/v1/models", headers={
            "Origin": APP, "Authorization": "Bearer sk-team"})
        assert "access-control-allow-origin" not in actual.headers
