"""The playground's pages: served without a key from the package's files, under a content
security policy that keeps them to this server; `/` leads there; a setting turns them off, and
a worker process serves none."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from assistants_server.app import create_app
from assistants_server.config import Settings
from assistants_server.playground import PAGE
from tests.conftest import running


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"api_keys": ["sk-only-key"]}


async def test_the_pages_are_served_without_a_key_under_a_policy(client: httpx.AsyncClient) -> None:
    assert (await client.get("/")).headers["location"] == "/playground/"
    page = await client.get("/playground/")
    assert page.status_code == 200 and page.text == (PAGE / "index.html").read_text()
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    script = await client.get("/playground/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert (await client.get("/v1/assistants")).status_code == 401  # the API still needs one
    missing = await client.get("/playground/missing.js")
    assert missing.status_code == 404 and "error" in missing.json()


async def test_a_setting_turns_the_pages_off(settings: Settings) -> None:
    async with running(settings.model_copy(update={"playground_enabled": False}), {}) as http:
        assert (await http.get("/playground/")).status_code == 404
        assert (await http.get("/")).status_code == 404


def test_a_worker_serves_no_pages(settings: Settings) -> None:
    worker = create_app(settings.model_copy(update={"role": "worker", "redis_url": "redis://x"}))
    paths = {getattr(route, "path", "") for route in worker.routes}
    assert "/playground" not in paths and "/" not in paths
