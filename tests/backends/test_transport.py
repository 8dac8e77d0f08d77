"""The backend client's transport: which connection a request gets, and what it raises."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpcore
import httpx
import pytest

from assistants_server.backends.transport import StackTransport, _Coalesced, backend_client


class CountingServer:
    """A loopback HTTP/1.1 server answering every request `ok` on a kept-alive connection,
    closing each connection `close_after` seconds after its last answer (None: never), and
    counting the connections it accepted."""

    def __init__(self, *, close_after: float | None = None, delay: float = 0.0,
                 tls: ssl.SSLContext | None = None) -> None:
        self.close_after = close_after
        self.delay = delay
        self.tls = tls
        self.accepted = 0

    async def __aenter__(self) -> CountingServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            while True:
                timeout = self.close_after
                async with asyncio.timeout(timeout):
                    head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                await asyncio.sleep(self.delay)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5, transport=StackTransport(max_idle=2)) as client:
        yield client


async def test_sequential_requests_share_one_connection(client: httpx.AsyncClient) -> None:
    async with CountingServer() as server:
        for _ in range(5):
            assert (await client.get(server.url)).text == "ok"
    assert server.accepted == 1


async def test_concurrent_requests_get_their_own_connections_and_idle_ones_are_capped(
    client: httpx.AsyncClient,
) -> None:
    async with CountingServer(delay=0.05) as server:
        answers = await asyncio.gather(*(client.get(server.url) for _ in range(4)))
        assert [a.text for a in answers] == ["ok"] * 4 and server.accepted == 4
        # max_idle=2: two of the four were kept, so two more at once open nothing new.
        await asyncio.gather(*(client.get(server.url) for _ in range(2)))
        assert server.accepted == 4
        await asyncio.gather(*(client.get(server.url) for _ in range(3)))
        assert server.accepted == 5


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    client: httpx.AsyncClient,
) -> None:
    async with CountingServer(close_after=0.05) as server:
        assert (await client.get(server.url)).text == "ok"
        await asyncio.sleep(0.2)
        assert (await client.get(server.url)).text == "ok"
    assert server.accepted == 2


async def test_a_streamed_response_returns_its_connection_when_closed(
    client: httpx.AsyncClient,
) -> None:
    async with CountingServer() as server:
        async with client.stream("GET", server.url) as response:
            assert await response.aread() == b"ok"
        async with client.stream("GET", server.url) as response:
            pass  # closed unread: the connection cannot be reused, a new one is opened
        assert (await client.get(server.url)).text == "ok"
    assert server.accepted == 2


class _Recording(httpcore.AsyncNetworkStream):
    """A network stream that keeps what is written and answers 200 with no body."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self.writes.append(buffer)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"

    async def aclose(self) -> None:
        pass


async def test_a_request_head_and_body_go_out_in_one_write() -> None:
    recording = _Recording()
    connection = httpcore.AsyncHTTP11Connection(
        httpcore.Origin(b"http", b"model", 80), _Coalesced(recording))
    response = await connection.request("POST", "http://model/v1/chat/completions",
                                        content=b'{"stream": true}')
    assert response.status == 200
    assert len(recording.writes) == 1  # httpcore wrote the head and the body apart
    assert recording.writes[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert recording.writes[0].endswith(b'\r\n\r\n{"stream": true}')


async def test_failures_are_raised_as_httpx_errors() -> None:
    async with backend_client(timeout=0.2, max_idle=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://127.0.0.1:9/")
        async with CountingServer(delay=1.0) as server:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(server.url)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command makes this test's certificate"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def test_https_is_verified_against_the_trusted_certificates(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    async with CountingServer(tls=tls) as server:
        # Not trusted: refused as httpx refuses it.
        async with backend_client(timeout=5, max_idle=2) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(server.url)
        # Trusted the way httpx lets an operator trust a certificate (SSL_CERT_FILE).
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        async with backend_client(timeout=5, max_idle=2) as client:
            for _ in range(3):
                assert (await client.get(server.url)).text == "ok"
    assert server.accepted == 1  # the refused handshake never got through; then one kept alive
