"""Waiting on the event loop."""

from __future__ import annotations

import asyncio
from contextlib import suppress


async def wait_set(event: asyncio.Event, seconds: float) -> None:
    """Until `event` is set or `seconds` pass, whichever comes first.

    Not `asyncio.wait_for`: on Python 3.11 it swallows a cancellation that arrives as the event
    is set, so a polling loop that is stopped by cancelling it would go on forever."""
    with suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
