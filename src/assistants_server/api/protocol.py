"""uvicorn's httptools protocol, sending a response's head together with its first body part.

uvicorn writes the status line and headers as soon as the app starts its response, then the
body: two send system calls for every JSON answer, where one would do. Here the head is held
until the next write (the body, a stream's first frames) and goes out with it, or at the end
of the event loop's current round if nothing follows in it (a stream still waiting for its
first event).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD = b"HTTP/1.1 "  # how uvicorn's status lines start


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_HeldHead(transport))  # type: ignore[arg-type]


class _HeldHead:
    """A transport that holds a response head back until the next write."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        elif data.startswith(_HEAD):
            self._head = data
            asyncio.get_running_loop().call_soon(self._flush)
            return
        self._transport.write(data)

    def _flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # the rest as the transport has it
        return getattr(self._transport, name)
