"""Wake-ups: queued work wakes the workers of every process at once, not at their next poll.

Two kinds of work: `runs` (the executors) and `ingestion` (the vector store file indexers).
`Wakeups.wake(kind)` runs this process's handlers of that kind, then tells the other processes
through a carrier: Redis pub/sub when ASSISTANTS_REDIS_URL is set (`RedisWakeups`), else
PostgreSQL's LISTEN/NOTIFY (`PostgresWakeups`), else none (SQLite: the processes of one server
poll). Callers wake after their commit, so a worker always finds what it is woken for.

On PostgreSQL a wake-up is `SELECT pg_notify(channel, kind)` on a pooled connection, after the
request's commit. Not inside the request's transaction, although PostgreSQL would deliver it at
the commit: the woken process could then start a run before the request published the run's
first events, which it does after the commit. The channel is per schema, as the tables are.
Each listening process keeps one connection outside the pool that LISTENs (asyncpg hands it
the notifications) and never opens a transaction, in which notifications would wait. It is
checked every `check_seconds`, since a network path that died shows only when used.

The poll (ASSISTANTS_POLL_SECONDS) stays the safety net: a wake-up that cannot be sent is
logged, not raised, and a listener that lost its connection logs a warning, reconnects with
backoff, then wakes every handler once for what was queued while it was away.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

from redis.asyncio import Redis
from sqlalchemy import NullPool, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    create_async_engine,
)

from assistants_server.events.bus import EventBus
from assistants_server.events.redis_bus import RedisEventBus
from assistants_server.kit.uow import after_commit

log = logging.getLogger(__name__)

Kind = Literal["runs", "ingestion"]
KINDS: tuple[Kind, ...] = ("runs", "ingestion")
Handler = Callable[[], Awaitable[object] | object]
Deliver = Callable[[str | bytes], Awaitable[None]]  # a message as received


def kind_of(payload: str | bytes) -> Kind:
    """The kind a message ("<kind> <origin>") names; anything else is `runs` (what servers
    sent before there were kinds, with a payload of "1")."""
    text = payload.decode(errors="replace") if isinstance(payload, bytes) else payload
    return "ingestion" if text.partition(" ")[0] == "ingestion" else "runs"


def retry_delay(failures: int) -> float:
    """Seconds before reconnecting after `failures` failures in a row: 0.5, 1, 2... up to 30."""
    return float(min(30.0, 0.5 * 2 ** max(0, failures - 1)))


class Carrier(Protocol):
    async def send(self, message: str) -> None:
        """Tell every listening process (this one too) `message`: "<kind> <origin>"."""
        ...

    async def listen(self, deliver: Deliver) -> None:
        """Call `deliver` with each message sent anywhere (and with every kind after each
        connection, for what was queued while none was open), until cancelled."""
        ...


def wakeups_for(bus: EventBus, engine: AsyncEngine, schema: str | None) -> Wakeups:
    """This process's wake-ups: through Redis with the Redis bus, else PostgreSQL's
    notifications on PostgreSQL, else within the process only."""
    if isinstance(bus, RedisEventBus):
        return Wakeups(RedisWakeups(bus.redis, bus.prefix))
    if engine.dialect.name == "postgresql":
        return Wakeups(PostgresWakeups(engine, channel_for(schema)))
    return Wakeups()


SESSION_INFO = "wakeups"  # a request's database session carries the app's Wakeups there


def wake_after_commit(session: AsyncSession, kind: Kind) -> None:
    """Wake every process's workers of `kind` once `session` commits (once per transaction):
    for a service that queues work without knowing who asked. A session that carries no
    Wakeups (a worker's, an import's) wakes nobody; the poll finds its work."""
    wakeups: Wakeups | None = session.info.get(SESSION_INFO)
    queued: set[Kind] = session.info.setdefault(f"{SESSION_INFO}.queued", set())
    if wakeups is None or kind in queued:
        return
    queued.add(kind)

    async def wake() -> None:
        queued.discard(kind)
        await wakeups.wake(kind)

    after_commit(session, wake)


class Wakeups:
    def __init__(self, carrier: Carrier | None = None) -> None:
        self.carrier = carrier
        self._handlers: dict[Kind, list[Handler]] = {}
        self._listening: asyncio.Task[None] | None = None
        # In each message sent, so that the carrier's echo of it is not delivered here twice.
        self.origin = secrets.token_hex(6)

    async def wake(self, kind: Kind) -> None:
        """Wake the workers of `kind`: this process's now, the others' through the carrier."""
        await self._deliver(kind)
        if self.carrier is None:
            return
        try:
            await self.carrier.send(f"{kind} {self.origin}")
        except Exception:  # noqa: BLE001 - the others find the work at their next poll
            log.warning("could not wake other processes (%s); they will find the work at "
                        "their next poll", kind, exc_info=True)

    def listen(self, handlers: Mapping[Kind, Handler]) -> None:
        """Call `handlers` on each wake-up of their kind, from this process and (with a
        carrier) from every other, until `stop`."""
        for kind, handler in handlers.items():
            self._handlers.setdefault(kind, []).append(handler)
        if self.carrier is not None and self._listening is None:
            self._listening = asyncio.create_task(self.carrier.listen(self._received),
                                                  name="wakeups")

    async def stop(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            await asyncio.gather(self._listening, return_exceptions=True)
            self._listening = None

    async def _received(self, message: str | bytes) -> None:
        text = message.decode(errors="replace") if isinstance(message, bytes) else message
        if text.partition(" ")[2] != self.origin:  # this process's own: delivered already
            await self._deliver(kind_of(text))

    async def _deliver(self, kind: Kind) -> None:
        for handler in self._handlers.get(kind, ()):
            result = handler()
            if isinstance(result, Awaitable):
                await result


class RedisWakeups:
    """The carrier through Redis pub/sub: the channel `{prefix}:wake`, the kind as payload."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.channel = f"{prefix}:wake"

    async def send(self, message: str) -> None:
        await self.redis.publish(self.channel, message)

    async def listen(self, deliver: Deliver) -> None:
        failures = 0
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    failures = 0
                    for kind in KINDS:
                        await deliver(kind)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await deliver(message["data"])
            except Exception:  # noqa: BLE001 - Redis went away: workers still poll
                failures += 1
                log.warning("lost the Redis wake-up channel; retrying in %.1f s",
                            retry_delay(failures), exc_info=True)
            await asyncio.sleep(retry_delay(failures))


NAME_BYTES = 63  # PostgreSQL's longest identifier, a channel's name included


def channel_for(schema: str | None) -> str:
    """The channel of the server whose tables are in `schema` (None: the search_path's)."""
    name = f"assistants_wake.{schema}" if schema else "assistants_wake"
    if len(name.encode()) > NAME_BYTES:
        name = "assistants_wake." + hashlib.sha256(str(schema).encode()).hexdigest()[:32]
    return name


class PostgresWakeups:
    def __init__(self, engine: AsyncEngine, channel: str, *, check_seconds: float = 30.0) -> None:
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.channel = channel
        self.check_seconds = check_seconds
        self.listener_pid: int | None = None  # the listening connection's server process

    async def send(self, message: str) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT pg_notify(:channel, :message)"),
                                     {"channel": self.channel, "message": message})

    async def listen(self, deliver: Deliver) -> None:
        engine = create_async_engine(self.engine.url, poolclass=NullPool,
                                     isolation_level="AUTOCOMMIT")
        failures = 0
        try:
            while True:
                reason = "it closed"
                try:
                    async with engine.connect() as connection:
                        failures = 0
                        await self._follow(connection, deliver)
                except Exception as exc:  # noqa: BLE001 - the poll finds the work meanwhile
                    reason = repr(exc)
                failures += 1
                self.listener_pid = None
                log.warning("no PostgreSQL wake-up connection (LISTEN %s: %s); reconnecting in "
                            "%.1f s, work is found by polling meanwhile", self.channel, reason,
                            retry_delay(failures))
                await asyncio.sleep(retry_delay(failures))
        finally:
            await engine.dispose()

    async def _follow(self, connection: AsyncConnection, deliver: Deliver) -> None:
        """LISTEN on `connection` and deliver what arrives, until the connection is lost."""
        driver: Any = (await connection.get_raw_connection()).driver_connection
        inbox: asyncio.Queue[str | None] = asyncio.Queue()  # None: the connection closed
        await driver.add_listener(self.channel,
                                  lambda _conn, _pid, _channel, payload: inbox.put_nowait(payload))
        driver.add_termination_listener(lambda _conn: inbox.put_nowait(None))
        self.listener_pid = driver.get_server_pid()
        for kind in KINDS:  # what was queued while nobody listened
            await deliver(kind)
        while True:
            try:
                async with asyncio.timeout(self.check_seconds):
                    payload = await inbox.get()
            except TimeoutError:
                async with asyncio.timeout(self.check_seconds):
                    await driver.fetchval("SELECT 1")
                continue
            if payload is None:
                return
            await deliver(payload)
