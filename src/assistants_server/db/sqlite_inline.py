"""SQLite for the async engine without a thread per connection.

aiosqlite runs every call (cursor, execute, fetch, close, commit) on a thread of its own and
wakes the event loop for each result: four or more thread hops per query, which cost more than
the query itself on a local file. This driver offers the same awaitable interface to
SQLAlchemy's aiosqlite dialect (through `async_creator`) but runs statements on the event loop,
where a query on a local SQLite file takes microseconds. Bulk writes (`executemany`) still go to
a worker thread, so that indexing a large file does not stall every other request.

Writers are queued in-process instead of in SQLite's busy handler, which sleeps up to 100 ms at
a time and would block the event loop here: a connection takes its engine's write lock (an
asyncio lock) before its first write and gives it back when its transaction ends. Another
process holding the database (a second server, `assistants-server migrate`) is waited for with
asyncio sleeps, up to the same timeout SQLite's handler would have used.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
BUSY_TIMEOUT_SECONDS = 30.0
# Statements that never take the write lock (a PRAGMA that must write retries while busy).
_READS = ("SELECT", "PRAGMA")


async def connect(
    path: str, write_lock: asyncio.Lock, busy_seconds: float | None = None
) -> InlineConnection:
    """A connection to the database file at `path`. `write_lock`: shared by the connections
    of one engine, held from a transaction's first write to its end. A write waits up to
    `busy_seconds` (default BUSY_TIMEOUT_SECONDS) for another process's, then fails as
    "database is locked"."""
    # check_same_thread=False: bulk writes run on a worker thread while the loop waits.
    raw = sqlite3.connect(path, check_same_thread=False, timeout=0)
    wait = BUSY_TIMEOUT_SECONDS if busy_seconds is None else busy_seconds
    return InlineConnection(raw, write_lock, wait)


class InlineConnection:
    """The parts of aiosqlite.Connection that SQLAlchemy's aiosqlite dialect uses."""

    def __init__(self, raw: sqlite3.Connection, lock: asyncio.Lock, timeout: float) -> None:
        self._conn = raw
        self._connection: sqlite3.Connection | None = raw
        self._lock = lock
        self._holds = False
        self._timeout = timeout

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> _CursorContext:
        return _CursorContext(self)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def commit(self) -> None:
        try:
            await self._retry_busy(self._conn.commit)
        finally:
            self._release()

    async def rollback(self) -> None:
        try:
            self._conn.rollback()
        finally:
            self._release()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close (also SQLAlchemy's force close: nothing of this connection runs elsewhere)."""
        if self._connection is None:
            return
        self._connection = None
        try:
            self._conn.close()
        finally:
            self._release(closed=True)

    async def _before(self, operation: str) -> None:
        """Take the write lock before a statement that may write, unless held already."""
        if self._holds or operation.lstrip()[:6].upper().startswith(_READS):
            return
        try:
            # Not wait_for: on Python 3.11 it can drop a lock acquired as the wait is cancelled.
            async with asyncio.timeout(self._timeout):
                await self._lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        self._holds = True

    def _release(self, closed: bool = False) -> None:
        if self._holds and (closed or not self._conn.in_transaction):
            self._holds = False
            self._lock.release()

    async def _retry_busy(self, call: Callable[[], T], threaded: bool = False) -> T:
        """Run `call` (on a worker thread when `threaded`); while another process holds the
        database, wait and try again."""
        deadline = time.monotonic() + self._timeout
        pause = 0.001
        while True:
            try:
                if not threaded:
                    return call()
                # A cancelled caller still waits for the thread: the connection must not be
                # rolled back or handed on while the thread is using it.
                work = asyncio.ensure_future(asyncio.to_thread(call))
                try:
                    return await asyncio.shield(work)
                except asyncio.CancelledError:
                    await asyncio.wait([work])
                    raise
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)


class _CursorContext:
    def __init__(self, connection: InlineConnection) -> None:
        self._connection = connection

    async def __aenter__(self) -> InlineCursor:
        return InlineCursor(self._connection)


class InlineCursor:
    """The parts of aiosqlite.Cursor that SQLAlchemy uses, run on the calling thread."""

    def __init__(self, connection: InlineConnection) -> None:
        self._connection = connection
        self._cursor = connection._conn.cursor()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, operation: str, parameters: Sequence[Any] | None = None) -> None:
        await self._connection._before(operation)
        args = (operation,) if parameters is None else (operation, parameters)
        try:
            await self._connection._retry_busy(lambda: self._cursor.execute(*args))
        finally:
            self._connection._release()  # a failed first write leaves no transaction

    async def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> None:
        await self._connection._before(operation)
        try:
            await self._connection._retry_busy(
                lambda: self._cursor.executemany(operation, seq_of_parameters), threaded=True)
        finally:
            self._connection._release()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    async def close(self) -> None:
        self._cursor.close()
