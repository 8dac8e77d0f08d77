"""Liveness and readiness, for load balancers, orchestrators and `docker compose`.

`GET /health` says the process answers. `GET /ready` says it can serve: the database answers
and its schema is at this release's newest migration (or a later release's, during an upgrade
that runs both side by side), and Redis answers when one is configured; else
503 with what is wrong, so a load balancer sends no traffic to a process that would fail it
(a database restarting, a deploy whose migrations have not run yet). Neither needs a key.
"""

from __future__ import annotations

import asyncio

from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from assistants_server.db.migrate import head, newer_than_head
from assistants_server.events.redis_bus import RedisEventBus

router = APIRouter(include_in_schema=False)
CHECK_SECONDS = 2.0


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    checks = {"database": _database(state.engine)}
    if isinstance(state.bus, RedisEventBus):
        checks["redis"] = _redis(state.bus)
    results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
    ok = all(result == "ok" for result in results.values())
    return JSONResponse({"status": "ready" if ok else "unavailable", "checks": results},
                        status_code=200 if ok else 503)


async def _database(engine: AsyncEngine) -> str:
    try:
        async with asyncio.timeout(CHECK_SECONDS), engine.connect() as connection:
            current = await connection.run_sync(_revision)
    except TimeoutError:
        return f"the database did not answer within {CHECK_SECONDS:g} s"
    except Exception as exc:  # any failure to reach it is the answer
        return f"the database is unreachable: {type(exc).__name__}: {exc}"
    if current != head() and not newer_than_head(current):  # newer: a later release's
        return (f"the database schema is at migration {current or 'none'}, not {head()}: run "
                "`assistants-server migrate`")
    return "ok"


def _revision(connection: Connection) -> str | None:
    connection.execute(text("SELECT 1"))
    return MigrationContext.configure(connection).get_current_revision()


async def _redis(bus: RedisEventBus) -> str:
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            await bus.redis.ping()
    except TimeoutError:
        return f"Redis did not answer within {CHECK_SECONDS:g} s"
    except Exception as exc:
        return f"Redis is unreachable: {type(exc).__name__}: {exc}"
    return "ok"
