"""The model's answer to a turn: asked for at once, read as it comes.

`Prefetched` awaits the first event in a task of its own, so the backend works on it while
the run's `in_progress` is committed; `ask` asks once more with the older half of the thread
left out when the backend refuses the prompt as longer than its window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator

from assistants_server import metrics
from assistants_server.backends.chat import BackendError, ChatBackend, ChatEvent
from assistants_server.engine.context import Context

log = logging.getLogger(__name__)


class Prefetched:
    """The model's answer, asked for at once: its first event is awaited in a task of its own,
    so the backend works on it while the run's `in_progress` is committed."""

    def __init__(self, stream: AsyncIterator[ChatEvent]) -> None:
        self._stream = stream
        self._first: asyncio.Task[ChatEvent] = asyncio.ensure_future(anext(stream))

    def close(self) -> None:
        """Stop asking: cancel the first read if it is still going, then close the backend's
        stream (its connection goes back to the pool). Safe to call more than once."""
        self._first.cancel()
        self._first.add_done_callback(self._close_stream)

    def _close_stream(self, first: asyncio.Task[ChatEvent]) -> None:
        if not first.cancelled():
            first.exception()  # retrieved: a failure nobody awaited is not worth a warning
        if isinstance(self._stream, AsyncGenerator):
            asyncio.ensure_future(self._stream.aclose())

    async def __aiter__(self) -> AsyncIterator[ChatEvent]:
        try:
            yield await self._first
        except StopAsyncIteration:
            return
        async for event in self._stream:
            yield event


async def ask(backend: ChatBackend, context: Context) -> AsyncIterator[ChatEvent]:
    """The model's answer to `context`; asked once more with the older half of the thread
    left out when the backend refuses the prompt as longer than its window (its tokenizer
    counts more than ours)."""
    relayed = False
    asked = time.perf_counter()
    try:
        async for event in backend.stream_chat(context.request):
            if not relayed:
                metrics.FIRST_TOKEN_SECONDS.labels(context.request.model).observe(
                    time.perf_counter() - asked)
            relayed = True
            yield event
    except BackendError as exc:
        shorter = context.shorter()
        if relayed or not exc.context_length or shorter is None:
            raise
        log.warning("the backend refused the prompt as too long (%s); asking again with "
                    "%d of %d messages", exc.message, len(shorter.messages),
                    len(context.request.messages))
        async for event in backend.stream_chat(shorter):
            yield event
