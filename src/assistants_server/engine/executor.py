"""The executor: claims queued runs from the database and drives them, with leases.

Claims and leases are `db/leases.py`'s: a claim is a compare-and-set on the run row (status
queued, lease free or expired), so two processes can never drive the same run, on SQLite or
PostgreSQL alike, and the leases of the runs this process drives or has waiting are renewed
by one task while it holds any. A run whose lease ran out while in progress belonged to a
process that died: the sweeper queues it again when nobody streams it (no token of the lost
turn reached a client; twice at most), else fails it with `server_error`. The
sweeper also expires runs past `expires_at` and hands `cancelling` runs of this process to
their tasks. A process that stops (SIGTERM, Ctrl-C, a deploy) lets its runs finish within a
grace period and hands the others back, queued again (`stop`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistants_server import metrics
from assistants_server.backends.chat import ChatBackend, ModelProfile
from assistants_server.db.leases import RUNS, Leases
from assistants_server.db.models import RunRow
from assistants_server.db.tenancy import for_project
from assistants_server.engine.runner import drive_run
from assistants_server.events.bus import EventBus
from assistants_server.logs import RUN_ID, THREAD_ID
from assistants_server.runs.failures import FAULT
from assistants_server.runs.lifecycle import end_run, hand_back, on_fresh_state, take_over
from assistants_server.runs.outbox import Outbox
from assistants_server.tools.base import ToolServices
from assistants_server.waiting import wait_set

log = logging.getLogger(__name__)

TOMBSTONE_SECONDS = 86_400

class Executor:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        backend: ChatBackend,
        *,
        concurrency: int = 64,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        profiles: Callable[[str], ModelProfile] | None = None,
        bus: EventBus | None = None,
        sweepers: Sequence[Callable[[], Awaitable[object]]] = (),
        services: ToolServices | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.services = services or ToolServices()
        self.backend = backend
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.profiles = profiles or (lambda _model: ModelProfile(128_000))
        self.bus = bus
        self.sweepers = list(sweepers)  # other periodic clean-ups (expired files)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # The runs this process drives or has waiting (`tasks` and `adopted`), renewed.
        self.leases = Leases(sessionmaker, RUNS, self.owner, lease_seconds)
        self.tasks: dict[str, asyncio.Task[None]] = {}
        # Runs leased to this process at creation (streamed here), waiting for room.
        self.adopted: deque[str] = deque()
        # The last claim filled every free slot: more queued runs may be waiting for room.
        self._backlog = False
        self._wakeup = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stopped: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()

    async def notify(self) -> None:
        """Something changed (a run was queued or cancelled): look now, not at the next poll.
        A coroutine, so background tasks call it on the event loop (asyncio.Event is not
        thread-safe) rather than from the thread pool."""
        self._wakeup.set()

    async def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="executor")

    async def stop(self, grace: float = 0.0) -> None:
        """Stop claiming runs, let those being driven go on for up to `grace` seconds, then
        hand back the rest: queued again, free for any process (this one after a restart) to
        claim at once, which starts their turn anew. Nobody's run ends `cancelled` because a
        process stopped. A second call (the server's shutdown after a drain that a signal
        began) cuts the grace short and waits for the first."""
        if self._stopped is None:
            self._stopped = asyncio.create_task(self._stop(grace), name="executor-stop")
        else:
            self._hurry.set()
        await asyncio.shield(self._stopped)

    async def _stop(self, grace: float) -> None:
        # Let the loop finish its round rather than cancelling it inside a database call.
        self._stopping = True
        self._wakeup.set()
        if self._loop_task is not None:
            await self._loop_task
        adopted, self.adopted = list(self.adopted), deque()
        await self.leases.release(adopted)  # queued here but not started: free them now
        await self._wait_for_runs(grace)
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        handed = await on_fresh_state(self._hand_back)  # a cut turn may be writing still
        if handed:
            log.info("handed back %d run(s) still in progress: %s", len(handed),
                     ", ".join(handed))
        await self.leases.stop(release=True)

    async def _wait_for_runs(self, grace: float) -> None:
        """Until the runs being driven stop, `grace` seconds pass or a second stop hurries."""
        deadline = time.monotonic() + grace
        hurry = asyncio.ensure_future(self._hurry.wait())
        try:
            while self.tasks and not self._hurry.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                await asyncio.wait([hurry, *self.tasks.values()], timeout=left,
                                   return_when=asyncio.FIRST_COMPLETED)
        finally:
            hurry.cancel()

    async def _hand_back(self) -> list[str]:
        """Queue again the runs still in progress under this process's leases."""
        outbox = Outbox(self.bus)
        async with self.sessionmaker() as session:
            runs = list(await session.scalars(select(RunRow).where(
                RunRow.status == "in_progress", RunRow.lease_owner == self.owner)))
            for run in runs:
                await hand_back(session, run, int(time.time()), outbox)
            await session.commit()
        await outbox.publish()
        return [run.id for run in runs]

    async def _loop(self) -> None:
        last_sweep = 0.0
        while not self._stopping:
            try:
                if time.monotonic() - last_sweep >= self.lease_seconds / 3:
                    await self.sweep()
                    last_sweep = time.monotonic()
                await self._cancel_requested()
                await self.claim()
            except Exception:  # keep serving; the next round retries
                log.exception("executor round failed")
            if self._stopping:
                return
            await wait_set(self._wakeup, self.poll_seconds)
            self._wakeup.clear()

    async def until_moved(self, run_id: str, seconds: float) -> None:
        """Until this process's drive of `run_id` stops (the run ended or waits for the
        client) or `seconds` pass; at once when this process is not driving it."""
        if (task := self.tasks.get(run_id)) is not None:
            await asyncio.wait([task], timeout=seconds)

    def has_room(self) -> bool:
        return len(self.tasks) + len(self.adopted) < self.concurrency

    def adopt(self, run_id: str, known: RunRow | None = None) -> None:
        """Drive a run this process leased when it was queued: now if there is room, else
        before any other claim. `known`: the run as just committed, to start without a read.
        A lease that may run out before its renewal (its request took long to commit), and
        any run that waited for room, is confirmed first: another process may have it."""
        expires = known.lease_expires_at if known is not None else None
        lapsing = expires is None or expires - time.time() < self.lease_seconds / 3
        self.leases.hold(run_id, None if lapsing else expires)
        if len(self.tasks) < self.concurrency and not self.adopted:
            self._start(run_id, None if lapsing else known, confirm=lapsing)
        else:
            self.adopted.append(run_id)
            self._wakeup.set()

    def _start(self, run_id: str, known: RunRow | None = None, confirm: bool = False) -> None:
        self.tasks[run_id] = asyncio.create_task(self._drive(run_id, known, confirm),
                                                 name=run_id)

    async def claim(self) -> list[str]:
        """Claim and start as many queued runs as there is room for, adopted ones first."""
        while self.adopted and len(self.tasks) < self.concurrency:
            self._start(self.adopted.popleft(), confirm=True)
        free = self.concurrency - len(self.tasks)
        if free <= 0:
            self._backlog = True  # not looked: some may be waiting
            return []
        # Never a run this process holds: one driven here may sit queued past its lease (a
        # busy loop), and claiming it again would ask the model twice.
        claimed, self._backlog = await self.leases.claim(
            RunRow.status == "queued", free, (RunRow.created_at, RunRow.pk))
        for run_id in claimed:
            self._start(run_id)
        return claimed

    async def _drive(self, run_id: str, known: RunRow | None, confirm: bool) -> None:
        RUN_ID.set(run_id)  # on every log line of this task
        if known is not None:
            THREAD_ID.set(known.thread_id)
        metrics.RUNS_ACTIVE.inc()
        try:
            if confirm and not await self.leases.confirm(run_id):
                log.info("run %s was claimed by another process before it started here",
                         run_id)
                return
            # The run's own project: what it reads and writes is that project's only.
            project_id = known.project_id if known is not None else await self._project_of(run_id)
            if project_id is None:
                return  # deleted meanwhile
            await drive_run(for_project(self.sessionmaker, project_id), self.backend, run_id,
                            self.profiles, self.bus, self.services, known)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("run %s failed unexpectedly", run_id)
            await self._fail(run_id)
        finally:
            metrics.RUNS_ACTIVE.dec()
            # Only our own entry: a continuation of the run may already have its own task.
            if self.tasks.get(run_id) is asyncio.current_task():
                del self.tasks[run_id]
                if run_id not in self.adopted:
                    self.leases.drop(run_id)
            if self._backlog or self.adopted:  # room for a run that is waiting
                self._wakeup.set()

    async def _project_of(self, run_id: str) -> str | None:
        async with self.sessionmaker() as session:
            return await session.scalar(select(RunRow.project_id).where(RunRow.id == run_id))

    async def _fail(self, run_id: str) -> None:
        """A fault of ours, not the model's: the stream gets the `error` event, then the run
        fails so that pollers see it end too."""
        outbox = Outbox(self.bus)
        outbox.error(run_id)
        async with self.sessionmaker() as session:
            # Only while the run is still ours: another process may have claimed it since.
            run = await session.scalar(select(RunRow).where(self.leases.mine(run_id)))
            if run is not None and run.status in ("queued", "in_progress", "cancelling"):
                await end_run(session, run, "failed", int(time.time()), outbox,
                              last_error=FAULT)
                await session.commit()
        await outbox.publish()

    async def _cancel_requested(self) -> None:
        """Stop driving the runs a client cancelled, and those whose thread was deleted."""
        if not self.tasks:
            return
        driven = list(self.tasks)
        async with self.sessionmaker() as session:
            rows = (await session.execute(select(RunRow.id, RunRow.status).where(
                RunRow.id.in_(driven)))).all()
        status = {run_id: state for run_id, state in rows}
        for run_id in driven:
            if status.get(run_id, "deleted") in ("cancelling", "deleted") and (
                    task := self.tasks.get(run_id)) is not None:
                task.cancel()

    async def sweep(self) -> None:
        """Expire overdue runs, fail runs of dead processes (their leases ran out), run the
        other clean-ups."""
        now = time.time()
        outbox = Outbox(self.bus)
        async with self.sessionmaker() as session:
            overdue = await session.scalars(select(RunRow).where(
                RunRow.status.in_(("queued", "requires_action")), RunRow.expires_at < now,
                RUNS.free(now)))
            for run in overdue:
                if self.bus is not None:
                    await self.bus.refresh(run.id)
                await end_run(session, run, "expired", int(now), outbox)
            orphans = await session.scalars(select(RunRow).where(
                RunRow.status.in_(("in_progress", "cancelling")), RUNS.expired(now)))
            for run in orphans:
                if run.id in self.tasks:
                    continue
                if self.bus is not None:
                    await self.bus.refresh(run.id)
                await take_over(session, run, int(now), outbox)
            await session.commit()
        await outbox.publish()
        for sweeper in self.sweepers:
            try:
                await sweeper()
            except Exception:  # one clean-up failing must not stop the others
                log.exception("sweeper %r failed", sweeper)

