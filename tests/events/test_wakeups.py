"""Wake-ups on their own: each kind reaches the handlers of its kind, in this process and through
PostgreSQL's notifications or Redis in others; a listener whose connection is terminated says
so and listens again; a wake-up that cannot be sent is logged, never raised."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from assistants_server.config import Settings
from assistants_server.db.engine import create_engine
from assistants_server.events.bus import LocalEventBus
from assistants_server.events.wakeups import (
    Kind,
    PostgresWakeups,
    RedisWakeups,
    Wakeups,
    channel_for,
    wakeups_for,
)
from tests.conftest import REQUIRE_SERVICES, _reachable

REDIS_URL = "redis://127.0.0.1:6379/0"


class Heard:
    """Handlers that note each wake-up they get, read in order by `next`."""

    def __init__(self) -> None:
        self.kinds: list[Kind] = []
        self.read = 0
        self.changed = asyncio.Event()

    def handler(self, kind: Kind) -> Callable[[], None]:
        def heard() -> None:
            self.kinds.append(kind)
            self.changed.set()
        return heard

    def handlers(self) -> dict[Kind, Callable[[], None]]:
        return {"runs": self.handler("runs"), "ingestion": self.handler("ingestion")}

    async def next(self, seconds: float = 5.0) -> Kind:
        """The first wake-up not read yet, when it comes."""
        async with asyncio.timeout(seconds):
            while len(self.kinds) == self.read:
                self.changed.clear()
                await self.changed.wait()
        self.read += 1
        return self.kinds[self.read - 1]

    async def settled(self) -> None:
        """Until listening began (with a wake-up of each kind: work may have been queued
        before) and no wake-up came for a moment since; all read."""
        await _until(lambda: {"runs", "ingestion"} <= set(self.kinds))
        while True:
            try:
                await self.next(0.3)
            except TimeoutError:
                return


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError


@pytest.fixture
def database() -> str:
    return "postgres"


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


async def _listening(wakeups: Wakeups, heard: Heard) -> None:
    wakeups.listen(heard.handlers())
    await heard.settled()


async def test_a_process_without_a_carrier_wakes_its_own_handlers_of_that_kind() -> None:
    wakeups, heard = Wakeups(), Heard()
    wakeups.listen(heard.handlers())
    await wakeups.wake("ingestion")
    await wakeups.wake("runs")
    assert heard.kinds == ["ingestion", "runs"]
    await wakeups.stop()


async def test_on_sqlite_wake_ups_stay_in_the_process(tmp_path: Any) -> None:
    engine = create_engine(Settings(data_dir=tmp_path))
    assert wakeups_for(LocalEventBus(), engine, None).carrier is None
    await engine.dispose()


async def test_postgres_notifications_wake_another_process_by_kind(
    settings: Settings, engine: AsyncEngine
) -> None:
    wakeups = wakeups_for(LocalEventBus(), engine, settings.database_schema)
    assert isinstance(wakeups.carrier, PostgresWakeups)
    other, heard = create_engine(settings), Heard()
    listener = wakeups_for(LocalEventBus(), other, settings.database_schema)
    await _listening(listener, heard)
    try:
        await wakeups.wake("ingestion")  # this one listens to nothing: no handler of its own
        assert await heard.next() == "ingestion"
        await wakeups.wake("runs")
        assert await heard.next() == "runs"
    finally:
        await listener.stop()
        await other.dispose()


async def test_servers_in_other_schemas_are_not_woken(
    settings: Settings, engine: AsyncEngine
) -> None:
    heard = Heard()
    listener = Wakeups(PostgresWakeups(engine, channel_for(settings.database_schema)))
    await _listening(listener, heard)
    try:
        await Wakeups(PostgresWakeups(engine, channel_for("elsewhere"))).wake("runs")
        with pytest.raises(TimeoutError):
            await heard.next(0.5)
    finally:
        await listener.stop()


async def test_a_listener_whose_connection_is_terminated_listens_again(
    settings: Settings, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    carrier = PostgresWakeups(engine, channel_for(settings.database_schema))
    heard = Heard()
    listener = Wakeups(carrier)
    await _listening(listener, heard)
    try:
        first = carrier.listener_pid
        async with engine.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            await connection.commit()
        with caplog.at_level(logging.WARNING, logger="assistants_server.events.wakeups"):
            await _until(lambda: carrier.listener_pid not in (None, first))
        assert "no PostgreSQL wake-up connection" in caplog.text
        # Listening again, it woke every kind once: work queued meanwhile is looked for.
        assert sorted([await heard.next(), await heard.next()]) == ["ingestion", "runs"]
        await Wakeups(carrier).wake("ingestion")
        assert await heard.next() == "ingestion"
    finally:
        await listener.stop()


async def test_a_wake_up_that_cannot_be_sent_is_logged_and_the_process_still_wakes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0")
    wakeups, heard = Wakeups(RedisWakeups(unreachable, "nowhere")), Heard()
    wakeups.listen({"runs": heard.handler("runs")})
    with caplog.at_level(logging.WARNING, logger="assistants_server.events.wakeups"):
        await wakeups.wake("runs")
    assert heard.kinds == ["runs"]
    assert "could not wake other processes" in caplog.text
    await wakeups.stop()
    await unreachable.aclose()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    if not _reachable("127.0.0.1", 6379):
        if REQUIRE_SERVICES:
            pytest.fail("Redis is not answering on 127.0.0.1:6379")
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def test_redis_carries_the_kind_and_older_servers_wake_ups_are_runs(redis: Redis) -> None:
    prefix = "t_" + uuid.uuid4().hex[:12]
    heard = Heard()
    listener = Wakeups(RedisWakeups(redis, prefix))
    await _listening(listener, heard)
    try:
        await Wakeups(RedisWakeups(redis, prefix)).wake("ingestion")
        assert await heard.next() == "ingestion"
        await redis.publish(f"{prefix}:wake", "1")  # what a server without kinds sends
        assert await heard.next() == "runs"
    finally:
        await listener.stop()


async def test_a_process_is_woken_once_by_its_own_wake_up(
    settings: Settings, engine: AsyncEngine
) -> None:
    """The carrier brings a process's own message back to it: that echo is not delivered a
    second time (each delivery is a claim round of the executor or the ingestor)."""
    wakeups, heard = wakeups_for(LocalEventBus(), engine, settings.database_schema), Heard()
    other = Heard()
    listener = wakeups_for(LocalEventBus(), engine, settings.database_schema)
    await _listening(wakeups, heard)
    await _listening(listener, other)
    try:
        await wakeups.wake("runs")
        assert await heard.next() == "runs"  # delivered here at once
        assert await other.next() == "runs"  # the message went round
        with pytest.raises(TimeoutError):
            await heard.next(0.5)
    finally:
        await wakeups.stop()
        await listener.stop()
