"""The engine's connection pool on PostgreSQL: a connection the database dropped is replaced."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from assistants_server.config import Settings
from assistants_server.db import engine as engine_module
from assistants_server.db.engine import (
    create_engine,
    create_read_sessionmaker,
    create_sessionmaker,
)
from tests.conftest import make_settings


@pytest.fixture
def pg_settings(tmp_path: Path) -> Iterator[Settings]:
    yield from make_settings("postgres", tmp_path)


async def _terminate(pids: set[int]) -> None:
    import asyncpg

    from tests.conftest import POSTGRES_URL
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for pid in pids:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_a_connection_dropped_while_idle_is_replaced(
    pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.2)
    engine = create_engine(pg_settings)
    try:
        async with engine.connect() as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await _terminate({pid})
        await asyncio.sleep(0.3)  # idle past the threshold: checked before use
        async with engine.connect() as connection:
            again = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert again != pid
    finally:
        await engine.dispose()


async def test_a_connection_used_moments_ago_is_not_pinged(
    pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[object] = []
    engine = create_engine(pg_settings)
    real = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(c) or real(c))
    try:
        for _ in range(5):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        assert pings == []
        monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        assert len(pings) == 1
    finally:
        await engine.dispose()


async def test_a_read_session_on_postgresql_opens_no_transaction(pg_settings: Settings) -> None:
    engine = create_engine(pg_settings)
    xact = text("SELECT pg_current_xact_id()::text")
    try:
        async with create_read_sessionmaker(engine)() as session:
            first = (await session.execute(xact)).scalar_one()
            assert (await session.execute(xact)).scalar_one() != first  # each its own
        async with create_sessionmaker(engine)() as session:
            first = (await session.execute(xact)).scalar_one()
            assert (await session.execute(xact)).scalar_one() == first
    finally:
        await engine.dispose()
