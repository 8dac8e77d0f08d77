"""The Redis `EventBus`: run event logs shared by every server process (ASSISTANTS_REDIS_URL).

With it, any process can serve any run's stream: an API-only process streams a run that another
process drives, and a client that reconnects may land on any process. Each watched run has
keys under the prefix: a Redis stream of its events, whose entry ids are `0-<sequence>` so
that SSE ids and Last-Event-ID stay plain numbers; a counter that hands out those sequence
numbers (one Lua script appends a batch atomically, so concurrent publishers never reorder or
collide); and the watch marker, which producers learn through `refresh`. Keys expire: a finished
run's after ASSISTANTS_STREAM_RETENTION_SECONDS, any other after `idle_seconds` without events.

The same Redis carries the wake-ups of every process's workers (events/wakeups.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.asyncio import Redis

from assistants_server.events.bus import DONE, Event

_APPEND = """
local count = (#ARGV - 2) / 2
local last = redis.call('INCRBY', KEYS[2], count)
local seq = last - count
for i = 3, #ARGV, 2 do
  seq = seq + 1
  redis.call('XADD', KEYS[1], '0-' .. seq, 'n', ARGV[i], 'd', ARGV[i + 1])
  if ARGV[i] == 'done' then redis.call('RPUSH', KEYS[5], seq) end
end
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ARGV[1]) end
if ARGV[2] == '1' then redis.call('SET', KEYS[4], '1', 'EX', ARGV[1]) end
return last
"""


class RedisEventBus:
    shared = True

    def __init__(self, url: str, *, prefix: str = "assistants", retention_seconds: float = 60.0,
                 idle_seconds: float = 900.0, max_connections: int = 10_000) -> None:
        # Each open stream holds a connection for its blocking read: the client's default of
        # 100 per process turned the 101st stream, and every request needing Redis, into a 500.
        self.redis: Redis = Redis.from_url(url, max_connections=max_connections)
        self.prefix = prefix
        self.retention = max(1, int(retention_seconds))
        self.idle = max(1, int(idle_seconds))
        self._append = self.redis.register_script(_APPEND)
        self._watched: dict[str, float] = {}  # what this process knows is watched, and when
        self._pruned = time.monotonic()

    def _keys(self, run_id: str) -> list[str]:
        base = f"{self.prefix}:run:{run_id}"
        return [f"{base}:log", f"{base}:seq", f"{base}:watch", f"{base}:end", f"{base}:dones"]

    async def close(self) -> None:
        await self.redis.aclose()

    async def watch(self, run_id: str, after: int = 0) -> bool:
        self._remember(run_id)
        keys = self._keys(run_id)
        created = await self.redis.set(keys[2], "1", ex=self.idle, nx=True)
        if created and after:  # numbered on from there, unless a publisher came first
            await self.redis.set(keys[1], after, ex=self.idle, nx=True)
        return bool(created)

    def watching(self, run_id: str) -> bool:
        return run_id in self._watched

    async def refresh(self, run_id: str) -> None:
        if await self.redis.exists(self._keys(run_id)[2]):
            self._remember(run_id)

    async def forget(self, run_id: str) -> None:
        self._watched.pop(run_id, None)
        await self.redis.delete(*self._keys(run_id))

    async def last_seq(self, run_id: str) -> int:
        value = await self.redis.get(self._keys(run_id)[1])
        return int(value) if value is not None else 0

    async def segment_start(self, run_id: str) -> int:
        keys = self._keys(run_id)
        last, dones = await self.redis.get(keys[1]), await self.redis.lrange(keys[4], -2, -1)
        ends = [int(seq) for seq in dones]
        if ends and last is not None and ends[-1] == int(last):
            ends.pop()  # the log ends a stream: start at the one before it
        return ends[-1] if ends else 0

    async def publish(
        self, run_id: str, events: Sequence[tuple[str, str]], *, final: bool = False
    ) -> None:
        if not events or run_id not in self._watched:
            return
        ttl = self.retention if final else self.idle
        args: list[str | int] = [ttl, "1" if final else "0"]
        for name, data in events:
            args += [name, data]
        await self._append(keys=self._keys(run_id), args=args)

    async def subscribe(self, run_id: str, after: int = 0) -> AsyncIterator[list[Event]]:
        log_key, seq_key, watch_key, end_key, _ = self._keys(run_id)
        position = max(0, after)
        # Its own connection: a blocking read holds one while it waits.
        async with self.redis.client() as reader:
            block: int | None = None  # the first read only looks; later ones wait up to 1 s
            while True:
                answer = await reader.xread({log_key: f"0-{position}"}, count=1000, block=block)
                entries = _entries(answer)
                if not entries:
                    last = await reader.get(seq_key)
                    if last is None and not await reader.exists(watch_key):
                        return  # not logged
                    if last is not None and position >= int(last) and await reader.exists(
                            end_key):
                        return  # ended before `position`
                    block = 1000
                    continue
                batch: list[Event] = []
                for entry_id, fields in entries:
                    seq = int(entry_id.split(b"-")[1])
                    batch.append(Event(seq, fields[b"n"].decode(), fields[b"d"].decode()))
                    position = seq
                    if batch[-1].name == DONE:
                        yield batch
                        return
                yield batch

    def _remember(self, run_id: str) -> None:
        now = time.monotonic()
        self._watched[run_id] = now
        if now - self._pruned > 60:
            self._pruned = now
            for stale in [r for r, t in self._watched.items() if now - t > self.idle]:
                del self._watched[stale]


def _entries(answer: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The entries of a one-stream XREAD answer: `[[stream, [(id, fields), ...]]]` (RESP2, the
    protocol this client speaks)."""
    if not answer:
        return []
    entries: list[tuple[bytes, dict[bytes, bytes]]] = answer[0][1]
    return entries
