"""Leases: how the background workers of several processes share rows of work (runs to drive,
files to index) without two of them doing the same row.

A row is claimable when the worker's condition holds (`status = 'queued'`) and its lease is
free (NULL) or expired. A claim is a compare-and-set: one UPDATE whose WHERE repeats that
condition, the same statement on SQLite and PostgreSQL, so of workers racing for a row exactly
one changes it (PostgreSQL re-checks the WHERE of a row another transaction changed meanwhile;
SQLite has one writer at a time). While a worker holds rows, one task renews their leases every
third of the lease; a worker that dies stops renewing, and its rows are claimable again once
their leases run out.

Whose lease it is: with an owner column (runs), the lease is this worker's while the column
names it. Without one (vector store files), the expiry the worker last wrote is its claim's
token: clearing it (a cancel) or another claim replacing it ends the claim, and a renewal
writes the next token only where the row still holds the last one. The final write of a
piece of work is made conditional on `mine` (or on `finishing`'s condition), so a worker that
lost its row writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, and_, false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import QueryableAttribute

from assistants_server.db.models import Base, RunRow, VectorStoreFileRow
from assistants_server.waiting import wait_set

log = logging.getLogger(__name__)
K = TypeVar("K", str, int)


class LeaseColumns(Generic[K]):
    """Where a table keeps its leases: the row's key, the lease's expiry (seconds since the
    epoch) and, optionally, its owner."""

    def __init__(
        self, table: type[Base], key: QueryableAttribute[K],
        expires: QueryableAttribute[float | None],
        owner: QueryableAttribute[str | None] | None = None,
    ) -> None:
        self.table = table
        self.key: QueryableAttribute[K] = key
        self.expires = expires
        self.owner = owner

    def free(self, now: float) -> ColumnElement[bool]:
        """Leased to no one, or the lease ran out."""
        return or_(self.expires.is_(None), self.expires < now)

    def expired(self, now: float) -> ColumnElement[bool]:
        return self.expires < now


RUNS = LeaseColumns(RunRow, RunRow.id, RunRow.lease_expires_at, RunRow.lease_owner)
VECTOR_STORE_FILES = LeaseColumns(
    VectorStoreFileRow, VectorStoreFileRow.pk, VectorStoreFileRow.lease_expires_at)


def grant(columns: LeaseColumns[Any], row: Base, owner: str, seconds: float) -> float:
    """Lease a row being written to `owner` (a run inserted already leased to the process that
    will drive it); that worker then `hold`s it. Returns the lease's expiry."""
    expires = time.time() + seconds
    setattr(row, columns.expires.key, expires)
    if columns.owner is not None:
        setattr(row, columns.owner.key, owner)
    return expires


class Claimed(NamedTuple, Generic[K]):
    keys: list[K]  # claimed, in the order asked for
    more: bool  # as many rows were claimable as asked for: others may be waiting


class Leases(Generic[K]):
    """The leases one worker holds on the rows of one table, and their renewal."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], columns: LeaseColumns[K],
        owner: str, seconds: float,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.columns: LeaseColumns[K] = columns
        self.owner, self.seconds = owner, seconds
        # Held rows: key -> the expiry last written (the token); None once the lease was lost.
        self._held: dict[K, float | None] = {}
        self._final: set[K] = set()  # being finished: no longer renewed
        self._lock = asyncio.Lock()  # a renewal in flight; `finishing` waits it out
        self._emptied = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None

    def holds(self, key: K) -> bool:
        return key in self._held

    async def claim(
        self, condition: ColumnElement[bool], limit: int,
        order_by: Sequence[QueryableAttribute[Any]] = (),
    ) -> Claimed[K]:
        """Claim up to `limit` rows where `condition` holds and the lease is free or expired,
        never one this worker holds already."""
        columns = self.columns
        now = time.time()
        token = now + self.seconds
        claimable = and_(condition, columns.free(now))
        if columns.owner is not None:
            # A row granted to this worker is its to take up (`hold`) once the request that
            # granted it commits, even if that took longer than the lease; claimed here only
            # if that never happened within one more lease.
            claimable = and_(claimable, or_(
                columns.owner.is_(None), columns.owner != self.owner,
                columns.expires < now - self.seconds))
        if self._held:
            claimable = and_(claimable, columns.key.not_in(list(self._held)))
        values: dict[Any, Any] = {columns.expires: token}
        if columns.owner is not None:
            values[columns.owner] = self.owner
        async with self.sessionmaker() as session:
            candidates = list(await session.scalars(
                select(columns.key).where(claimable).order_by(*order_by).limit(limit)))
            if not candidates:
                return Claimed([], False)
            won = set(await session.scalars(
                update(columns.table).where(columns.key.in_(candidates), claimable)
                .values(values).returning(columns.key)
                .execution_options(synchronize_session=False)))
            await session.commit()
        keys = [key for key in candidates if key in won]
        for key in keys:
            self._held[key] = token
        self._renew_in_background()
        return Claimed(keys, len(candidates) >= limit)

    def hold(self, key: K, expires: float | None = None) -> None:
        """Renew from now on the lease of a row leased to this worker elsewhere (`grant`)."""
        self._held[key] = expires if expires is not None else time.time() + self.seconds
        self._final.discard(key)
        self._renew_in_background()

    async def confirm(self, key: K) -> bool:
        """Renew one held row's lease now; False (and the row dropped) when it is no longer
        this worker's. For a row taken up after its lease may have run out: another worker
        may have claimed it meanwhile."""
        async with self._lock:
            token = time.time() + self.seconds
            async with self.sessionmaker() as session:
                kept = await session.scalar(
                    update(self.columns.table).where(self.mine(key))
                    .values({self.columns.expires: token}).returning(self.columns.key)
                    .execution_options(synchronize_session=False))
                await session.commit()
            if kept is not None:
                self._held[key] = token
        if kept is None:
            self.drop(key)
        return kept is not None

    def drop(self, key: K) -> None:
        """Forget `key` (its work is over): no renewal, no release; the row is left as is."""
        self._held.pop(key, None)
        self._final.discard(key)
        if not self._held:
            self._emptied.set()

    def mine(self, key: K) -> ColumnElement[bool]:
        """The condition under which `key`'s row is still leased to this worker."""
        return self._mine_any({key: self._held.get(key)})

    @asynccontextmanager
    async def writing(self, key: K) -> AsyncIterator[ColumnElement[bool]]:
        """For one intermediate write of `key`'s work (a batch of it): a renewal in flight is
        waited for and none starts until the block ends, so the condition given matches the
        token the row holds while the write is made under it."""
        async with self._lock:
            yield self.mine(key)

    @asynccontextmanager
    async def finishing(self, key: K) -> AsyncIterator[ColumnElement[bool]]:
        """For the final write of `key`'s work: renewals of it stop (one in flight is waited
        for, as it changes the token), and the write is made under the condition given. The
        key stays held (released by `stop`) until dropped."""
        async with self._lock:
            self._final.add(key)
            condition = self.mine(key)
        yield condition

    async def renew(self) -> list[K]:
        """Extend every held lease (one statement); returns the keys whose lease was lost
        (released by a cancel, taken by another worker): they are renewed no more."""
        async with self._lock:
            current = {key: token for key, token in self._held.items()
                       if token is not None and key not in self._final}
            if not current:
                return []
            token = time.time() + self.seconds
            async with self.sessionmaker() as session:
                kept = set(await session.scalars(
                    update(self.columns.table).where(self._mine_any(current))
                    .values({self.columns.expires: token}).returning(self.columns.key)
                    .execution_options(synchronize_session=False)))
                await session.commit()
            lost = []
            for key, old in current.items():
                if self._held.get(key) == old:  # not held anew meanwhile
                    self._held[key] = token if key in kept else None
                    if key not in kept:
                        lost.append(key)
        if lost:
            log.warning("leases lost on %s: %s", self.columns.table.__tablename__, lost)
        return lost

    async def release(self, keys: Iterable[K] | None = None) -> None:
        """Free the leases of `keys` (all held ones by default) that are still this worker's,
        for any worker to claim at once, and forget them."""
        chosen = list(self._held) if keys is None else list(keys)
        async with self._lock:
            condition = self._mine_any({key: self._held.get(key) for key in chosen})
            values: dict[Any, Any] = {self.columns.expires: None}
            if self.columns.owner is not None:
                values[self.columns.owner] = None
            async with self.sessionmaker() as session:
                await session.execute(
                    update(self.columns.table).where(condition).values(values)
                    .execution_options(synchronize_session=False))
                await session.commit()
        for key in chosen:
            self.drop(key)

    async def stop(self, *, release: bool = False) -> None:
        """Stop renewing; with `release`, free what is held, else leave it to run out."""
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
            self._renewer = None
        if release and self._held:
            await self.release()
        self._held.clear()
        self._final.clear()

    def _mine_any(self, tokens: Mapping[K, float | None]) -> ColumnElement[bool]:
        columns = self.columns
        if columns.owner is not None:
            return and_(columns.key.in_(list(tokens)), columns.owner == self.owner,
                        columns.expires.is_not(None))
        by_token: dict[float, list[K]] = {}
        for key, token in tokens.items():
            if token is not None:
                by_token.setdefault(token, []).append(key)
        if not by_token:
            return false()
        return or_(*(and_(columns.expires == token, columns.key.in_(keys))
                     for token, keys in by_token.items()))

    def _renew_in_background(self) -> None:
        """One renewal task per worker, while it holds anything."""
        if self._held:
            self._emptied.clear()
            if self._renewer is None or self._renewer.done():
                self._renewer = asyncio.create_task(
                    self._renew_while_held(), name=f"leases-{self.owner}")

    async def _renew_while_held(self) -> None:
        while self._held:
            await wait_set(self._emptied, self.seconds / 3)
            if not self._held:
                return
            try:
                await self.renew()
            except Exception:  # the next round retries; a lease has two more rounds to go
                log.exception("renewing leases failed")
