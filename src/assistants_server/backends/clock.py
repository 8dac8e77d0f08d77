"""An answer's time bounds, as one moving deadline per answer (`Timeouts` of the backend's
configuration): each read is bounded on its own with `asyncio.timeout_at`, never across a
`yield`, because an answer is read from more than one task (the engine awaits its first event
in a task of its own)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from assistants_server.backends.chat import BackendError
from assistants_server.backends.config import BackendConfig


class Clock:
    """An answer's time bounds: the first token's until it comes (retries included), then
    `idle` between chunks, never past `total`; an answer asked for whole (not streamed) has
    only `total`. Each wait is bounded on its own (`bound`), never across a `yield`, so a
    timeout only ever cancels the read it bounds. A connection that breaks mid-answer is a
    BackendError too, saying so."""

    def __init__(
        self, config: BackendConfig, loop: asyncio.AbstractEventLoop, *, whole: bool = False,
    ) -> None:
        self.config, self.loop = config, loop
        self.started = loop.time()
        self.end = self.started + config.timeouts.total
        self.next = self.end if whole else min(
            self.started + config.timeouts.first_token, self.end)
        self.waiting_first = not whole
        self.whole = whole

    def allows(self, delay: float) -> bool:
        return self.loop.time() + delay < self.next

    @contextlib.asynccontextmanager
    async def bound(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout_at(self.next):
                yield
        except TimeoutError as exc:
            raise self._expired() from exc

    async def chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        # A stream is read as sent (asked uncompressed); a whole answer decoded, whatever a
        # proxy on the way did to it.
        raw = response.aiter_bytes() if self.whole else response.aiter_raw()
        while True:
            try:  # `bound()` inlined: this runs once per chunk of every answer
                async with asyncio.timeout_at(self.next):
                    chunk = await anext(raw)
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                raise self._expired() from exc
            except httpx.TransportError as exc:
                raise BackendError(
                    "server_error", f"The model backend '{self.config.name}' broke off its "
                    f"answer ({type(exc).__name__}: {exc or 'connection closed'}).",
                    cut=True) from exc
            if not self.waiting_first:
                self.next = min(self.loop.time() + self.config.timeouts.idle, self.end)
            yield chunk

    def answering(self) -> None:
        """The answer began (a role-only chunk or a keep-alive is not its first token)."""
        if self.waiting_first:
            self.waiting_first = False
            self.next = min(self.loop.time() + self.config.timeouts.idle, self.end)

    def _expired(self) -> BackendError:
        name, timeouts = self.config.name, self.config.timeouts
        if self.loop.time() >= self.end - 0.01:
            said = f"did not finish its answer within {timeouts.total:g} s (timeouts.total)"
        elif self.waiting_first:
            said = (f"sent no first token within {timeouts.first_token:g} s "
                    "(timeouts.first_token, retries included)")
        else:
            said = f"stalled for {timeouts.idle:g} s mid-answer (timeouts.idle)"
        return BackendError("server_error", f"The model backend '{name}' timed out: it {said}.")
