"""Rows written with a Core INSERT (`insert_new`) behave as rows the ORM flushed: numbered,
defaults filled in, taken into a later session without a read, versioned, and left as they
were when their transaction rolls back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import make_transient
from sqlalchemy.orm.exc import StaleDataError

from assistants_server.config import Settings
from assistants_server.db.engine import create_engine, create_sessionmaker
from assistants_server.db.insert import insert_new
from assistants_server.db.models import RunRow, ThreadRow


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def _run(thread_id: str, run_id: str) -> RunRow:
    return RunRow(id=run_id, created_at=1, thread_id=thread_id, active_thread_id=thread_id,
                  assistant_id="asst_x", status="queued", model="m")


async def test_rows_are_numbered_with_defaults_and_merge_without_a_read(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    thread = ThreadRow(id="thread_a", created_at=1)
    run = _run("thread_a", "run_a")
    async with sessions() as session:
        await insert_new(session, [thread], attach=True)
        thread.metadata_ = {"changed": "after the insert"}  # attached: flushed as an update
        await insert_new(session, [run])
        await session.commit()
    assert thread.pk == 1 and run.pk == 1  # each table numbers its own rows
    # Unset columns took their defaults, on the row as in the table.
    assert (run.version, run.tools, run.instructions, run.usage) == (1, [], "", None)
    async with sessions() as session:
        merged = await session.merge(run, load=False)  # needs every attribute loaded
        merged.status = "in_progress"
        await session.commit()
    async with sessions() as session:
        stored = await session.scalar(select(RunRow).where(RunRow.id == "run_a"))
        assert stored is not None and (stored.status, stored.version) == ("in_progress", 2)
        assert stored.tools == [] and stored.tool_resources == {}
        again = await session.scalar(select(ThreadRow).where(ThreadRow.id == "thread_a"))
        assert again is not None and again.metadata_ == {"changed": "after the insert"}
    # The run's version moved on: a write from the first copy is refused, as with the ORM.
    async with sessions() as session:
        stale = await session.merge(run, load=False)
        stale.status = "cancelled"
        with pytest.raises(StaleDataError):
            await session.commit()


async def test_a_rolled_back_row_is_written_afresh(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await insert_new(session, [ThreadRow(id="thread_b", created_at=1)])
        await session.commit()
    run = _run("thread_b", "run_b")
    async with sessions() as session:
        await insert_new(session, [run])
        await session.rollback()
    assert run.status == "queued" and run.model == "m"  # nothing expired by the rollback
    make_transient(run)
    run.pk = None
    async with sessions() as session:
        await insert_new(session, [run])
        await session.commit()
        count = await session.scalar(select(func.count()).select_from(RunRow))
    assert count == 1
