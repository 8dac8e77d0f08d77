"""The lease module on its own, on SQLite and PostgreSQL: racing claims never share a row,
held leases are renewed by one task, a lease that runs out is claimed by another worker, and a
worker that lost its row can no longer write under its lease."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from assistants_server.config import Settings
from assistants_server.db.engine import create_engine, create_sessionmaker
from assistants_server.db.leases import RUNS, VECTOR_STORE_FILES, Leases, grant
from assistants_server.db.models import RunRow, ThreadRow, VectorStoreFileRow, VectorStoreRow
from assistants_server.db.tenancy import DEFAULT_PROJECT

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def engines(settings: Settings) -> AsyncIterator[Callable[[], Sessions]]:
    """Session factories on engines of their own, as separate processes would have."""
    made: list[AsyncEngine] = []

    def sessions() -> Sessions:
        made.append(create_engine(settings))
        return create_sessionmaker(made[-1])

    yield sessions
    for engine in made:
        await engine.dispose()


def _run(number: int, **fields: Any) -> RunRow:
    values: dict[str, Any] = dict(
        id=f"run_{number:024d}", created_at=1, thread_id="thread_leases", assistant_id="a",
        status="queued", model="m", instructions="", tools=[], tool_resources={},
        truncation_strategy={}, response_format="auto", tool_choice="auto",
        parallel_tool_calls=True, metadata_={}, project_id=DEFAULT_PROJECT)
    return RunRow(**(values | fields))


async def _queued_runs(sessions: Sessions, count: int, start: int = 0) -> list[str]:
    async with sessions() as session:
        if await session.get(ThreadRow, 1) is None:
            session.add(ThreadRow(project_id=DEFAULT_PROJECT,
                                  pk=1, id="thread_leases", created_at=1, metadata_={}))
            await session.flush()
        runs = [_run(n) for n in range(start, start + count)]
        session.add_all(runs)
        await session.commit()
    return [run.id for run in runs]


async def _pending_files(sessions: Sessions, count: int) -> list[int]:
    async with sessions() as session:
        session.add(VectorStoreRow(project_id=DEFAULT_PROJECT,
                                   id="vs_leases", created_at=1, metadata_={},
                                   last_active_at=1))
        await session.flush()
        files = [VectorStoreFileRow(project_id=DEFAULT_PROJECT, 
            id=f"file-{n}", created_at=1, metadata_={}, vector_store_id="vs_leases",
            status="in_progress", usage_bytes=0, chunking_strategy={})
            for n in range(count)]
        session.add_all(files)
        await session.commit()
    return [file.pk for file in files]


async def _expiry(sessions: Sessions, column: Any, key: object) -> float | None:
    table = column.class_
    async with sessions() as session:
        value: float | None = await session.scalar(
            select(table.lease_expires_at).where(column == key))
        return value


async def test_racing_claims_never_share_a_run(engines: Callable[[], Sessions]) -> None:
    ids = await _queued_runs(engines(), 40)
    workers = [Leases(engines(), RUNS, f"worker-{n}", 60.0) for n in range(4)]
    won: list[list[str]] = [[] for _ in workers]
    while sum(map(len, won)) < len(ids):
        rounds = await asyncio.gather(*(
            w.claim(RunRow.status == "queued", 7, (RunRow.created_at, RunRow.pk))
            for w in workers))
        assert any(claimed.keys for claimed in rounds)
        for mine, claimed in zip(won, rounds, strict=True):
            mine.extend(claimed.keys)
    assert sorted(sum(won, [])) == sorted(ids)  # every run claimed, none twice
    async with engines()() as session:
        owners = dict((await session.execute(select(RunRow.id, RunRow.lease_owner))).all())
    for worker, mine in zip(workers, won, strict=True):
        assert all(owners[run_id] == worker.owner for run_id in mine)
        assert all(worker.holds(run_id) for run_id in mine)
        await worker.stop()


async def test_racing_claims_never_share_a_file(engines: Callable[[], Sessions]) -> None:
    pks = await _pending_files(engines(), 30)
    workers = [Leases(engines(), VECTOR_STORE_FILES, f"w{n}", 60.0) for n in range(3)]
    rounds = await asyncio.gather(*(
        w.claim(VectorStoreFileRow.status == "in_progress", 30, (VectorStoreFileRow.pk,))
        for w in workers))
    claimed = [pk for each in rounds for pk in each.keys]
    assert sorted(claimed) == sorted(pks)
    for worker, each in zip(workers, rounds, strict=True):
        async with worker.sessionmaker() as session:  # each claim's token is on its rows
            for pk in each.keys:
                assert await session.scalar(
                    select(VectorStoreFileRow.pk).where(worker.mine(pk))) == pk
        await worker.stop()


async def test_claims_honour_the_condition_the_order_and_the_limit(
    engines: Callable[[], Sessions]
) -> None:
    sessions = engines()
    ids = await _queued_runs(sessions, 5)
    async with sessions() as session:
        await session.execute(update(RunRow).where(RunRow.id == ids[0]).values(
            status="requires_action"))
        await session.commit()
    worker = Leases(sessions, RUNS, "me", 60.0)
    first = await worker.claim(RunRow.status == "queued", 2, (RunRow.created_at, RunRow.pk))
    assert first == (ids[1:3], True)
    rest = await worker.claim(RunRow.status == "queued", 5, (RunRow.created_at, RunRow.pk))
    assert rest == (ids[3:], False)  # never again one it holds
    await worker.stop()


async def test_held_leases_are_renewed_until_the_worker_stops(
    engines: Callable[[], Sessions]
) -> None:
    sessions = engines()
    [pk] = await _pending_files(sessions, 1)
    holder = Leases(sessions, VECTOR_STORE_FILES, "holder", 0.6)
    other = Leases(engines(), VECTOR_STORE_FILES, "other", 0.6)
    pending = VectorStoreFileRow.status == "in_progress"
    assert (await holder.claim(pending, 1)).keys == [pk]
    first = await _expiry(sessions, VectorStoreFileRow.pk, pk)
    deadline = time.monotonic() + 2.0  # more than three leases
    while time.monotonic() < deadline:
        assert (await other.claim(pending, 1)).keys == []
        await asyncio.sleep(0.1)
    renewed = await _expiry(sessions, VectorStoreFileRow.pk, pk)
    assert first is not None and renewed is not None and renewed > first + 1.0
    async with sessions() as session:  # the final write under the current token
        async with holder.finishing(pk) as mine:
            done = await session.execute(update(VectorStoreFileRow).where(
                VectorStoreFileRow.pk == pk, mine).values(lease_expires_at=None))
        await session.commit()
    assert done.rowcount == 1  # type: ignore[attr-defined]
    await holder.stop()
    await other.stop()


async def test_a_lease_left_to_run_out_is_claimed_by_another_worker(
    engines: Callable[[], Sessions]
) -> None:
    sessions = engines()
    [run_id] = await _queued_runs(sessions, 1)
    dead = Leases(sessions, RUNS, "dead", 0.5)
    other = Leases(engines(), RUNS, "other", 30.0)
    queued = RunRow.status == "queued"
    assert (await dead.claim(queued, 1)).keys == [run_id]
    await dead.stop()  # stops renewing and writes nothing: as if its process died
    assert (await other.claim(queued, 1)).keys == []
    await asyncio.sleep(0.6)
    assert (await other.claim(queued, 1)).keys == [run_id]
    async with sessions() as session:
        assert await session.scalar(select(RunRow.id).where(dead.mine(run_id))) is None
        assert await session.scalar(select(RunRow.id).where(other.mine(run_id))) == run_id
    await other.stop()


async def test_a_lost_lease_is_reported_renewed_no_more_and_not_written_under(
    engines: Callable[[], Sessions]
) -> None:
    sessions = engines()
    [pk, kept] = await _pending_files(sessions, 2)
    first = Leases(sessions, VECTOR_STORE_FILES, "first", 60.0)
    second = Leases(engines(), VECTOR_STORE_FILES, "second", 60.0)
    pending = VectorStoreFileRow.status == "in_progress"
    assert (await first.claim(pending, 2)).keys == [pk, kept]
    async with sessions() as session:  # its lease ran out: another worker claims it
        await session.execute(update(VectorStoreFileRow).where(
            VectorStoreFileRow.pk == pk).values(lease_expires_at=time.time() - 1))
        await session.commit()
    assert (await second.claim(pending, 2)).keys == [pk]
    taken = await _expiry(sessions, VectorStoreFileRow.pk, pk)
    assert await first.renew() == [pk]
    assert await first.renew() == []  # not tried again
    assert await _expiry(sessions, VectorStoreFileRow.pk, pk) == taken
    async with first.finishing(pk) as mine, sessions() as session:
        written = await session.execute(update(VectorStoreFileRow).where(
            VectorStoreFileRow.pk == pk, mine).values(status="completed"))
        await session.commit()
    assert written.rowcount == 0  # type: ignore[attr-defined]
    await first.release()  # frees only what is still its own
    assert await _expiry(sessions, VectorStoreFileRow.pk, pk) == taken
    assert await _expiry(sessions, VectorStoreFileRow.pk, kept) is None
    await second.stop()


async def test_a_row_granted_at_insertion_is_held_and_renewed(
    engines: Callable[[], Sessions]
) -> None:
    sessions = engines()
    await _queued_runs(sessions, 0)
    async with sessions() as session:
        run = _run(99)
        expires = grant(RUNS, run, "streamer", 0.6)
        session.add(run)
        await session.commit()
    worker = Leases(sessions, RUNS, "streamer", 0.6)
    worker.hold(run.id, expires)
    await asyncio.sleep(1.0)  # past the granted lease
    renewed = await _expiry(sessions, RunRow.id, run.id)
    assert renewed is not None and renewed > expires and renewed > time.time()
    other = Leases(engines(), RUNS, "other", 60.0)
    assert (await other.claim(RunRow.status == "queued", 1)).keys == []
    worker.drop(run.id)
    await worker.stop()
