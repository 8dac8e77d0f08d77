"""The server's HTTP protocol sends a response's head with what follows it, never without it
and never out of order."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from assistants_server.api.protocol import _HeldHead
from tests.conftest import LiveServer


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None


async def test_a_head_goes_out_with_the_body_in_one_write() -> None:
    transport = _Transport()
    held = _HeldHead(transport)  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert transport.writes == []
    held.write(b"ok")
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
    await asyncio.sleep(0)  # the round's end finds nothing held
    assert len(transport.writes) == 1
    assert held.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest passes through


async def test_a_head_alone_goes_out_at_the_end_of_the_round_or_on_close() -> None:
    transport = _Transport()
    held = _HeldHead(transport)  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    await asyncio.sleep(0)
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]
    held.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    held.close()
    assert transport.writes[-1] == b"HTTP/1.1 204 No Content\r\n\r\n" and transport.closed


@pytest.fixture
def streaming_app() -> FastAPI:
    app = FastAPI()

    @app.get("/slow")
    async def slow() -> StreamingResponse:
        async def parts() -> Any:
            await asyncio.sleep(0.3)
            yield b"late"
        return StreamingResponse(parts(), media_type="text/plain")

    @app.get("/json")
    async def json_() -> dict[str, str]:
        return {"a": "b"}

    return app


def test_a_stream_gets_its_head_before_its_first_part(streaming_app: FastAPI) -> None:
    with LiveServer(streaming_app) as server, socket.create_connection(
            ("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=5) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
        sock.settimeout(0.2)
        head = sock.recv(65536)  # before the body's 0.3 s are up
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"late" not in head
        sock.settimeout(5)
        rest = b""
        while b"0\r\n\r\n" not in rest:
            rest += sock.recv(65536)
        assert b"late" in rest
        sock.sendall(b"GET /json HTTP/1.1\r\nhost: x\r\n\r\n")  # kept alive, in order
        answer = b""
        while not answer.endswith(b'{"a":"b"}'):
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
