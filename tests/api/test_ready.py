"""`/ready` for load balancers: 200 when the database answers at the newest migration (and
Redis, when configured), else 503 saying what is wrong; `/health` only says the process is up.
Neither asks for a key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from fastapi import FastAPI
from sqlalchemy import text

from assistants_server.app import create_app
from assistants_server.config import Settings
from assistants_server.db.engine import create_engine
from assistants_server.db.migrate import alembic_config, head, run_blocking, upgrade_to_head
from tests.conftest import make_settings


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"api_keys": ["sk-only"]}


async def _get(app: FastAPI, path: str) -> httpx.Response:
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        return await client.get(path)


async def test_a_migrated_database_is_ready(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")  # no key: orchestrators have none
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}
    assert (await client.get("/health")).json() == {"status": "ok"}


async def test_a_schema_behind_the_code_is_not_ready(settings: Settings) -> None:
    command.downgrade(alembic_config(settings), "-1")
    # An API process (a worker would not get as far as driving runs on an old schema).
    api_only = settings.model_copy(update={"executor_enabled": False})
    response = await _get(create_app(api_only), "/ready")
    assert response.status_code == 503
    database = response.json()["checks"]["database"]
    assert "assistants-server migrate" in database and "not" in database


async def test_an_unreachable_redis_is_not_ready(tmp_path: Path) -> None:
    [settings] = make_settings("sqlite", tmp_path, redis_url="redis://127.0.0.1:1/0")
    response = await _get(create_app(settings), "/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["redis"].startswith("Redis is unreachable")


async def _stamp(settings: Settings, revision: str) -> None:
    engine = create_engine(settings)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = :revision"),
                                 {"revision": revision})
    await engine.dispose()


async def test_a_schema_a_later_release_migrated_is_served(settings: Settings) -> None:
    """A rolling upgrade: the new release's processes migrated; this release's keep starting
    and stay in the load balancer (migrations only add)."""
    newer = f"{int(head() or 0) + 1:04d}"
    run_blocking(_stamp(settings, newer))
    upgrade_to_head(settings)  # `serve` migrates first: nothing to do, no error
    response = await _get(create_app(settings), "/ready")
    assert response.status_code == 200, response.json()
    run_blocking(_stamp(settings, "f00d"))  # not a revision of ours at all
    response = await _get(create_app(settings), "/ready")
    assert response.status_code == 503
    assert "f00d" in response.json()["checks"]["database"]
