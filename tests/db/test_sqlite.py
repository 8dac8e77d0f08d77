"""SQLite under concurrency: writers of one process all commit, a slow statement or another
process's write is waited for without blocking the event loop, and a writer that is cancelled
or fails never keeps the database locked."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from assistants_server.config import Settings
from assistants_server.db import engine as db_engine
from assistants_server.db.engine import create_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(data_dir=tmp_path))
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE items (n INTEGER)"))
    yield engine
    await engine.dispose()


def _database(tmp_path: Path) -> Path:
    return next(tmp_path.glob("*.db"))


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text("SELECT count(*) FROM items")) or 0)


async def test_concurrent_writers_of_one_process_all_commit(engine: AsyncEngine) -> None:
    async def write(n: int) -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO items VALUES (:n)"), {"n": n})
            await asyncio.sleep(0.001)  # hold the transaction across a turn of the loop
            await connection.execute(text("UPDATE items SET n = n WHERE n = :n"), {"n": n})

    started = time.monotonic()
    await asyncio.gather(*(write(n) for n in range(100)))
    assert await _count(engine) == 100
    # SQLite's busy handler waits for the writer ahead, on the connections' threads.
    assert time.monotonic() - started < 10


async def test_reads_go_on_while_a_write_is_open(engine: AsyncEngine) -> None:
    async with engine.begin() as writer:
        await writer.execute(text("INSERT INTO items VALUES (1)"))
        # Another connection reads the last committed state at once (WAL), not waiting.
        assert await asyncio.wait_for(_count(engine), 1) == 0
    assert await _count(engine) == 1


async def test_another_process_write_is_waited_for_without_blocking_the_loop(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    held, release = threading.Event(), threading.Event()

    def other_process() -> None:  # a connection outside this process's pool
        raw = sqlite3.connect(_database(tmp_path), isolation_level=None)
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("INSERT INTO items VALUES (0)")
        held.set()
        release.wait(5)
        raw.execute("COMMIT")
        raw.close()

    other = threading.Thread(target=other_process)
    other.start()
    held.wait(5)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def write() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO items VALUES (1)"))

    ticking = asyncio.create_task(ticker())
    writing = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not writing.done()  # waiting for the other process's transaction
    assert ticks >= 10  # and the event loop kept running meanwhile
    release.set()
    await asyncio.wait_for(writing, 5)
    ticking.cancel()
    other.join()
    assert await _count(engine) == 2


async def test_a_lock_held_too_long_by_another_process_is_reported(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_engine, "SQLITE_BUSY_TIMEOUT_MS", 200)
    await engine.dispose()  # new connections take the shorter wait
    raw = sqlite3.connect(_database(tmp_path), isolation_level=None)
    raw.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO items VALUES (1)"))
    finally:
        raw.execute("ROLLBACK")
        raw.close()
    async with engine.begin() as connection:  # nothing of ours was left holding it
        await connection.execute(text("INSERT INTO items VALUES (2)"))
    assert await _count(engine) == 1


async def test_a_cancelled_or_failed_writer_leaves_the_database_unlocked(
    engine: AsyncEngine,
) -> None:
    inside = asyncio.Event()

    async def stuck_writer() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO items VALUES (1)"))
            inside.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(stuck_writer())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(OperationalError):
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO no_such_table VALUES (1)"))
    async with engine.begin() as connection:
        await asyncio.wait_for(connection.execute(text("INSERT INTO items VALUES (2)")), 2)
    assert await _count(engine) == 1


async def test_a_slow_statement_does_not_stall_the_event_loop(engine: AsyncEngine) -> None:
    """A search of a large store or a checkpoint runs on the connection's thread: requests
    and streams served meanwhile keep their pace."""
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    slow = text("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                "WHERE x < 3000000) SELECT count(*) FROM c")
    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    async with engine.connect() as connection:
        assert await connection.scalar(slow) == 3_000_000
    elapsed = time.monotonic() - started
    ticking.cancel()
    assert elapsed > 0.1, "the statement was meant to take a while"
    assert len(gaps) >= 10 and max(gaps) < 0.05


async def _wait_of_one_writer_behind_a_busy_one(engine: AsyncEngine) -> float:
    """A writer that keeps taking the lock back (one transaction after another, like an
    ingestion writing chunks), and one more writer arriving meanwhile: how long it waits."""
    stop = asyncio.Event()

    async def busy() -> None:
        while not stop.is_set():
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO items VALUES (0)"))
                await asyncio.sleep(0.02)  # work done inside the transaction

    background = asyncio.create_task(busy())
    try:
        await asyncio.sleep(0.1)
        started = time.monotonic()
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO items VALUES (1)"))
        return time.monotonic() - started
    finally:
        stop.set()
        await background


async def test_a_writer_gets_its_turn_behind_one_that_keeps_writing(engine: AsyncEngine) -> None:
    waits = [await _wait_of_one_writer_behind_a_busy_one(engine) for _ in range(5)]
    # Its turn comes after the transaction in progress (20 ms), not when SQLite's busy handler,
    # sleeping up to 100 ms between tries, happens to find the lock free.
    assert max(waits) < 0.5, waits


async def test_a_writer_waiting_past_the_busy_timeout_fails_and_the_queue_goes_on(
        tmp_path: Path) -> None:
    from assistants_server.db.sqlite_writers import WriterQueue

    engine = create_engine(Settings(data_dir=tmp_path, sqlite_fair_writes=False))
    WriterQueue(timeout_seconds=0.3).install(engine)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE items (n INTEGER)"))
        async with engine.begin() as holder:
            await holder.execute(text("INSERT INTO items VALUES (1)"))
            with pytest.raises(OperationalError, match="database is locked"):
                async with engine.begin() as late:
                    await late.execute(text("INSERT INTO items VALUES (2)"))
        async with engine.begin() as connection:  # the turn was given back
            await connection.execute(text("INSERT INTO items VALUES (3)"))
        assert await _count(engine) == 2
    finally:
        await engine.dispose()
