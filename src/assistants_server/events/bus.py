"""The `EventBus`: an ordered, replayable log of events per run.

Producers (the API when it changes a run, the runner as the model answers) publish events with
their payloads already serialized; subscribers read a run's log from any position and follow it
live. Sequence numbers start at 1 and are the SSE `id:` of each frame, so a client that lost its
connection resumes after the last id it saw.

Only runs somebody streams are logged (`watch`): a run created with `stream: true`, or one a
client subscribed to. Publishing to a run nobody watches costs a dictionary lookup: `watching`
answers from this process's memory, which `refresh` brings up to date where the log is shared
between processes (redis_bus.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

DONE = "done"


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    name: str
    data: str


class EventBus(Protocol):
    shared: bool  # True when every server process sees the same logs

    async def watch(self, run_id: str, after: int = 0) -> bool:
        """Start logging `run_id`, its first event numbered `after + 1` (a log that is gone
        starts again after the last id a client saw, so ids never go back); False when it
        was logged already."""
        ...

    def watching(self, run_id: str) -> bool:
        """Whether `run_id` is logged, as far as this process knows (no I/O: it is asked for
        every event)."""
        ...

    async def refresh(self, run_id: str) -> None:
        """Learn whether another process started logging `run_id`."""
        ...

    async def forget(self, run_id: str) -> None:
        """Stop logging `run_id` (a watch started for a request that then failed)."""
        ...

    async def last_seq(self, run_id: str) -> int:
        """The sequence number of the run's newest event; 0 when it has none."""
        ...

    async def segment_start(self, run_id: str) -> int:
        """Where the run's latest stream begins: after the `done` that ended the one before
        it (a run waits for tool outputs between streams); 0 for the first."""
        ...

    async def publish(
        self, run_id: str, events: Sequence[tuple[str, str]], *, final: bool = False
    ) -> None:
        """Append (name, data) pairs; `final` when the run has ended."""
        ...

    def subscribe(self, run_id: str, after: int = 0) -> AsyncIterator[list[Event]]:
        """Batches of the events after `after`, live, up to and including the next `done`;
        nothing when the run is not logged or ended before `after`."""
        ...


@dataclass(slots=True)
class _Log:
    first: int = 0  # the sequence number before its first event
    events: list[Event] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    touched: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    subscribers: int = 0
    waiting: int = 0  # subscribers asleep on `changed`; publishing wakes only those


class LocalEventBus:
    """The in-process bus: logs live in this process's memory.

    A finished run's log is kept `retention_seconds` for clients that reconnect; a log nobody
    publishes to for `idle_seconds` (its run was finished by another process) is dropped too.
    """

    shared = False

    def __init__(self, retention_seconds: float = 60.0, idle_seconds: float = 900.0) -> None:
        self.retention_seconds = retention_seconds
        self.idle_seconds = idle_seconds
        self._logs: dict[str, _Log] = {}
        self._pruned = time.monotonic()

    async def watch(self, run_id: str, after: int = 0) -> bool:
        self._prune()
        if run_id in self._logs:
            return False
        self._logs[run_id] = _Log(first=after)
        return True

    def watching(self, run_id: str) -> bool:
        return run_id in self._logs

    async def refresh(self, run_id: str) -> None:
        """Nothing to learn: every watcher of this bus is in this process."""

    async def forget(self, run_id: str) -> None:
        self._logs.pop(run_id, None)

    async def last_seq(self, run_id: str) -> int:
        log = self._logs.get(run_id)
        return log.first + len(log.events) if log is not None else 0

    async def segment_start(self, run_id: str) -> int:
        log = self._logs.get(run_id)
        events = log.events if log is not None else []
        end = len(events) - 1 if events and events[-1].name == DONE else len(events)
        return next((e.seq for e in reversed(events[:end]) if e.name == DONE), 0)

    def subscribers(self, run_id: str) -> int:
        log = self._logs.get(run_id)
        return log.subscribers if log is not None else 0

    async def publish(
        self, run_id: str, events: Sequence[tuple[str, str]], *, final: bool = False
    ) -> None:
        log = self._logs.get(run_id)
        if log is None:
            return
        seq = log.first + len(log.events)
        for name, data in events:
            seq += 1
            log.events.append(Event(seq, name, data))
        now = time.monotonic()
        log.touched = now
        if final:
            log.finished_at = now
        if log.waiting:  # a busy subscriber finds the new events when it comes back
            changed, log.changed = log.changed, asyncio.Event()
            changed.set()

    async def subscribe(self, run_id: str, after: int = 0) -> AsyncIterator[list[Event]]:
        log = self._logs.get(run_id)
        if log is None:
            return
        position = max(0, after - log.first)  # an index into its events
        log.subscribers += 1
        try:
            while True:
                changed = log.changed
                if position < len(log.events):
                    batch = log.events[position:]
                    for i, event in enumerate(batch):
                        if event.name == DONE:
                            yield batch[: i + 1]
                            return
                    position += len(batch)
                    yield batch
                elif log.finished_at is not None:
                    return
                else:
                    log.waiting += 1
                    try:
                        await changed.wait()
                    finally:
                        log.waiting -= 1
        finally:
            log.subscribers -= 1

    def _prune(self) -> None:
        now = time.monotonic()
        if now - self._pruned < 5.0:
            return
        self._pruned = now
        stale = [run_id for run_id, log in self._logs.items() if log.subscribers == 0 and (
            (log.finished_at is not None and now - log.finished_at > self.retention_seconds)
            or now - log.touched > self.idle_seconds)]
        for run_id in stale:
            del self._logs[run_id]
