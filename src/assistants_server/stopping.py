"""Stopping without cancelling anyone's run: SIGTERM or Ctrl-C begins a drain at once.

uvicorn stops on those signals by closing its listeners, waiting for open connections (a
run's stream is one) and then running the app's shutdown. The executor must learn of the stop
at the first step, not the last: it stops claiming queued runs, lets those in progress finish
within the grace period with their streams still open, and hands back the others (queued
again: `Executor.stop`). Then the streams still open are ended without `done`, so clients
that resume (`Last-Event-ID`) know to reconnect.

The hook chains the signal handlers the server installed (plain `signal` API, nothing of the
server's own), and only where that is possible: in the main thread, behind a handler that can
be called. Elsewhere (a server run in a thread by tests) the app's shutdown does it all, with
no grace.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from sse_starlette.sse import AppStatus

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def draining_on_stop_signals(drain: Callable[[], Awaitable[None]]) -> Iterator[bool]:
    """While in the block, a stop signal starts `drain` on the event loop before the server's
    own handler sees it; yields whether the hook could be installed."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    if not all(callable(handler) for handler in previous.values()):
        yield False
        return
    loop = asyncio.get_running_loop()
    started: list[asyncio.Task[None]] = []

    async def drain_then_end_streams() -> None:
        try:
            await drain()
        except Exception:
            log.exception("draining before the stop failed")
        AppStatus.should_exit = True  # the streams still open end now

    def handle(sig: int, frame: FrameType | None) -> None:
        if not started:
            log.info("stopping: no new runs are claimed; runs in progress may finish")
            loop.call_soon_threadsafe(
                lambda: started.append(loop.create_task(drain_then_end_streams())))
        handler: Any = previous[signal.Signals(sig)]
        handler(sig, frame)

    # The streams stay open through the drain: they end when their runs do, or at its end.
    AppStatus.disable_automatic_graceful_drain()  # type: ignore[no-untyped-call]
    for sig in SIGNALS:
        signal.signal(sig, handle)
    try:
        yield True
    finally:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is handle:
                signal.signal(sig, handler)
        AppStatus.enable_automatic_graceful_drain_mode()  # type: ignore[no-untyped-call]
