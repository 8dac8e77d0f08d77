"""A lean stand-in for the model server: every `POST /v1/chat/completions` gets the stream the
test suite's fake backend sends by default ("Hello!" in chunks, usage, [DONE]), every
`GET /v1/models` an empty list. Written on asyncio and httptools rather than FastAPI so that
on a small machine it takes a fifth of the CPU the suite's fake backend does, which would
otherwise be taken from the server being measured; a real model runs elsewhere.

    python bench/fake_model.py PORT
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httptools
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fake_backend import Reply, _stream  # noqa: E402 - the same bytes as the suite's


async def _answer_bytes() -> bytes:
    events = [event.encode() async for event in _stream(Reply(text="Hello!"))]
    body = b"".join(b"%x\r\n%s\r\n" % (len(event), event) for event in events) + b"0\r\n\r\n"
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + body)


MODELS = (b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 28\r\n\r\n'
          b'{"object":"list","data":[]}\n')


class _Connection(asyncio.Protocol):
    def __init__(self, completion: bytes) -> None:
        self.completion = completion
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        answer = self.completion if self.url.endswith(b"/chat/completions") else MODELS
        self.url = b""
        self.transport.write(answer)  # type: ignore[attr-defined]


async def serve(port: int) -> None:
    completion = await _answer_bytes()
    server = await asyncio.get_running_loop().create_server(
        lambda: _Connection(completion), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
