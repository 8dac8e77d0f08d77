"""The httpx transport the server's backend calls go through: idle connections on a stack.

httpcore's pool re-examines every connection it holds on each request and each response close:
it asks every idle socket whether it is readable and, per idle connection, counts the idle ones
again. With the executor's 64 runs streaming from the model at once, that was 5 ms of CPU per
chat completion, more than the rest of the call. Here a request takes the connection returned
last for its origin, checks that one alone, and puts it back when its response is closed.

Concurrent requests are bounded by their callers (the executor's concurrency, the ingestion
workers), not here; `max_idle` caps the connections kept open between requests.

A request's head and body go out in one send (`_Coalesced`): httpcore writes them one after
the other, and each write was a system call of its own.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

KEEPALIVE_EXPIRY_SECONDS = 5.0
_HTTPCORE_ERRORS = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
                    httpcore.UnsupportedProtocol, httpcore.ProxyError)


def backend_client(*, timeout: float, max_idle: int) -> httpx.AsyncClient:
    """An httpx client over `StackTransport`; over httpx's own pool where the environment names
    a proxy (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY), which httpx honours and this transport does
    not."""
    if urllib.request.getproxies():
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=max_idle)
        return httpx.AsyncClient(timeout=timeout, limits=limits)
    return httpx.AsyncClient(timeout=timeout, transport=StackTransport(max_idle=max_idle))


class StackTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_idle: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self.max_idle = max_idle
        self._ssl_context = ssl_context
        self._idle: dict[tuple[bytes, bytes, int], list[httpcore.AsyncHTTPConnection]] = {}
        self._busy: set[httpcore.AsyncHTTPConnection] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = httpcore.Origin(url.raw_scheme, url.raw_host, url.port or
                                 (443 if url.raw_scheme == b"https" else 80))
        connection = await self._take(origin)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                             target=url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions)
        self._busy.add(connection)
        try:
            with _mapped():
                response = await connection.handle_async_request(core_request)
        except BaseException:
            self._busy.discard(connection)
            await connection.aclose()
            raise
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_Body(self, origin, connection, response.stream),
                              extensions=response.extensions)

    async def _take(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        idle = self._idle.get(_key(origin))
        while idle:
            connection = idle.pop()
            # One readable-socket check: a server that closed a kept-alive connection has sent
            # its EOF by now.
            if connection.is_idle() and not connection.has_expired():
                return connection
            await connection.aclose()
        if origin.scheme == b"https" and self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return httpcore.AsyncHTTPConnection(origin, ssl_context=self._ssl_context,
                                            keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
                                            network_backend=_BACKEND)

    async def _give_back(self, origin: httpcore.Origin,
                         connection: httpcore.AsyncHTTPConnection) -> None:
        self._busy.discard(connection)
        idle = self._idle.setdefault(_key(origin), [])
        if connection.is_idle() and len(idle) < self.max_idle:
            idle.append(connection)
        else:
            await connection.aclose()

    async def aclose(self) -> None:
        connections = [c for idle in self._idle.values() for c in idle] + list(self._busy)
        self._idle.clear()
        self._busy.clear()
        for connection in connections:
            await connection.aclose()


class _Body(httpx.AsyncByteStream):
    def __init__(self, transport: StackTransport, origin: httpcore.Origin,
                 connection: httpcore.AsyncHTTPConnection, stream: object) -> None:
        self._transport = transport
        self._origin = origin
        self._connection = connection
        self._stream = stream
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for part in self._stream:  # type: ignore[attr-defined]
                yield part

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            with _mapped():
                await self._stream.aclose()  # type: ignore[attr-defined]
        finally:
            await self._transport._give_back(self._origin, self._connection)


class _CoalescingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own network backend, with streams that send their writes when they read.
    (The `timeout` parameters are httpcore's interface.)"""

    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Coalesced(await self._backend.connect_tcp(
            host, port, timeout=timeout, local_address=local_address,
            socket_options=socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _Coalesced(httpcore.AsyncNetworkStream):
    """Writes wait until the stream is read (an HTTP/1.1 client reads once its request is
    written), then go out together, under the timeout of the last of them."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._pending: list[bytes] = []
        self._timeout: float | None = None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if buffer:
            self._pending.append(buffer)
            self._timeout = timeout

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        if self._pending:
            data, self._pending = b"".join(self._pending), []
            await self._stream.write(data, self._timeout)
        return await self._stream.read(max_bytes, timeout)

    async def aclose(self) -> None:
        self._pending = []
        await self._stream.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        return _Coalesced(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


_BACKEND = _CoalescingBackend()


def _key(origin: httpcore.Origin) -> tuple[bytes, bytes, int]:
    return origin.scheme, origin.host, origin.port


@contextmanager
def _mapped() -> Iterator[None]:
    """httpcore's errors as httpx's (the two libraries name them alike), as httpx's own
    transport does, so callers catch httpx.TimeoutException and httpx.TransportError."""
    try:
        yield
    except _HTTPCORE_ERRORS as exc:
        raise getattr(httpx, type(exc).__name__, httpx.TransportError)(str(exc)) from exc
