"""The test command on a fresh machine: a PostgreSQL server with no `test` database yet gets
one, instead of every PostgreSQL test failing to connect."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.conftest import POSTGRES_URL, _postgres_problem, create_database_if_missing


async def test_a_missing_test_database_is_created_once() -> None:
    if (problem := _postgres_problem()) is not None:
        pytest.skip(problem)
    name = "t_fresh_" + uuid.uuid4().hex[:12]
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    with pytest.raises(asyncpg.InvalidCatalogNameError):  # as on a fresh server
        await asyncpg.connect(dsn)
    try:
        assert await create_database_if_missing(url) is True
        connection = await asyncpg.connect(dsn)
        assert await connection.fetchval("SELECT current_database()") == name
        await connection.close()
        assert await create_database_if_missing(url) is False  # there already: left alone
    finally:
        admin = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg://",
                                                           "postgresql://"))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()
