"""The unit of work: what a request queues to follow its commit runs after it and only then;
what undoes work outside the database runs when the commit fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.config import Settings
from assistants_server.db.engine import create_engine, create_sessionmaker
from assistants_server.kit.uow import after_commit, commit, on_rollback


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[AsyncSession]:
    engine = create_engine(Settings(data_dir=tmp_path))
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE items (n INTEGER PRIMARY KEY)"))
    async with create_sessionmaker(engine)() as session:
        yield session
    await engine.dispose()


async def test_queued_work_runs_after_the_commit_in_order(session: AsyncSession) -> None:
    seen: list[str] = []

    async def committed_count() -> None:
        async with AsyncSession(session.bind) as other:  # another connection sees the commit
            seen.append(f"rows={await other.scalar(text('SELECT count(*) FROM items'))}")

    await session.execute(text("INSERT INTO items VALUES (1)"))
    after_commit(session, committed_count)
    after_commit(session, lambda: seen.append("woken"))
    on_rollback(session, lambda: seen.append("undone"))
    assert seen == []
    await commit(session)
    assert seen == ["rows=1", "woken"]


async def test_a_failed_commit_undoes_and_runs_nothing_queued(session: AsyncSession) -> None:
    seen: list[str] = []
    # A deferred foreign key fails the commit itself, as a constraint checked at commit does.
    await session.execute(text("CREATE TABLE parts (n INTEGER REFERENCES items (n) "
                               "DEFERRABLE INITIALLY DEFERRED)"))
    await commit(session)
    await session.execute(text("INSERT INTO parts VALUES (7)"))
    on_rollback(session, lambda: seen.append("bytes deleted"))
    after_commit(session, lambda: seen.append("woken"))
    with pytest.raises(IntegrityError):
        await commit(session)
    assert seen == ["bytes deleted"]
    await commit(session)  # nothing left queued from the failed attempt
    assert seen == ["bytes deleted"]
