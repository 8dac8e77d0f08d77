"""The writers of one process take SQLite's write lock in the order they asked for it.

SQLite has one write lock per database. A connection that finds it taken waits in SQLite's busy
handler, which sleeps 1, 2, 5... up to 100 ms between tries and is not first come, first served:
under contention (runs starting and ending, an ingestion writing chunks, searches touching
their store) a writer can lose the lock many times in a row, and a run's `in_progress` commit
waited seconds while its model's tokens arrived (bench/mixed_load.py). Here a transaction of
this process takes an asyncio lock, which is fair, before its first write statement and gives
it back when it commits or rolls back (or its connection goes back to the pool), so the writers
of a process queue in order and the next one starts as soon as the lock is free. SQLite's own
handler still arbitrates between processes. Reads never queue (WAL). A writer waits at most
the busy timeout, as in SQLite's handler, then fails with "database is locked".
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.IGNORECASE)
log = logging.getLogger(__name__)
SLOW_TURN_SECONDS = 5.0


class WriterQueue:
    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self._lock = asyncio.Lock()
        # The pooled connection (its record's `info`, whose identity outlives its contents)
        # whose transaction has the turn.
        self._holder: dict[str, Any] | None = None

    def install(self, engine: AsyncEngine) -> None:
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before_execute)
        event.listen(sync, "commit", self._transaction_ended)
        event.listen(sync, "rollback", self._transaction_ended)
        # However a connection leaves its transaction behind, the turn goes with it.
        for leaving in ("checkin", "invalidate", "soft_invalidate", "close", "detach"):
            event.listen(sync.pool, leaving, self._connection_left)

    def _before_execute(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        info = conn.connection.record_info
        if info is self._holder or not WRITE.match(statement):
            return
        # Event handlers are synchronous; the engine runs them where the adapted asyncio
        # connection can still wait for a coroutine (its public `run_async`).
        conn.connection.dbapi_connection.run_async(lambda _driver: self._acquire(statement))
        self._holder = info

    async def _acquire(self, statement: str) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await self._lock.acquire()
        except TimeoutError:
            raise OperationalError(statement, None, Exception(
                f"database is locked: no write turn within {self.timeout_seconds:g} s")) from None
        if (waited := time.monotonic() - started) > SLOW_TURN_SECONDS:
            log.warning("a write waited %.1f s for its turn at SQLite's write lock", waited)

    def _transaction_ended(self, conn: Any) -> None:
        # Called just before the COMMIT or ROLLBACK runs: the next writer may meet SQLite's
        # lock for that statement's length, and its busy handler's first naps are 1-2 ms.
        try:
            info = conn.connection.record_info
        except Exception:  # noqa: BLE001 - invalidated: the pool's events release the turn
            return
        self._release(info)

    def _connection_left(self, _dbapi_connection: Any, record: Any, *_: Any) -> None:
        self._release(record.info)

    def _release(self, info: dict[str, Any] | None) -> None:
        if info is not None and info is self._holder:
            self._holder = None
            self._lock.release()
