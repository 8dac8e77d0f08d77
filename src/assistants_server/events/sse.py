"""Server-Sent Events responses served from a run's event log (WIRE.md §7.1).

Each frame carries `id:` (its sequence number in the run's log), `event:` and one line of
compact JSON `data:`; frames that are ready together go out in one write. Idle streams get
`: ping` comment lines. A stream always ends with `event: done` / `data: [DONE]`, then closes; a
client that disconnects ends only its own subscription, never the run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

from sse_starlette import ServerSentEvent
from sse_starlette.sse import EventSourceResponse

from assistants_server import metrics
from assistants_server.events.bus import DONE, Event, EventBus

DONE_FRAME = b"event: done\ndata: [DONE]\n\n"
# A keep-alive is a lone comment line, with no blank line after it: the SDK's decoder keeps the
# last `id:` it saw and dispatches an (empty, unparsable) event at any blank line, so a
# `: ping` followed by a blank line would break its stream. The next frame ends the line.
PING = b": ping\n"


def encode(events: list[Event]) -> bytes:
    return "".join(f"id: {e.seq}\nevent: {e.name}\ndata: {e.data}\n\n"
                   for e in events).encode()


def event_stream(
    bus: EventBus, run_id: str, after: int, keepalive_seconds: float
) -> EventSourceResponse:
    async def frames() -> AsyncIterator[bytes]:
        done = False
        metrics.STREAMS_OPEN.inc()
        try:
            async for batch in bus.subscribe(run_id, after):
                done = batch[-1].name == DONE
                yield encode(batch)
            if not done:  # the run ended before `after`, or is not logged here
                yield DONE_FRAME
        finally:
            metrics.STREAMS_OPEN.dec()

    return _response(frames(), keepalive_seconds)


def snapshot_stream(name: str, data: str) -> EventSourceResponse:
    """One event and `done`, for a run whose live events this process cannot see."""
    async def frames() -> AsyncIterator[bytes]:
        yield f"event: {name}\ndata: {data}\n\n".encode() + DONE_FRAME

    return _response(frames(), 0)


def _response(frames: AsyncIterator[bytes], keepalive_seconds: float) -> EventSourceResponse:
    return EventSourceResponse(frames, ping=keepalive_seconds, sep="\n",
                               ping_message_factory=_ping,
                               headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _ping() -> ServerSentEvent:
    # sse-starlette sends bytes as they are (its ensure_bytes), though typed for an event.
    return cast(ServerSentEvent, PING)
