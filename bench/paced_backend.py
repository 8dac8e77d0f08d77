"""A fake model server that answers at a real model's pace, for benchmarks that time what the
server adds on the way: `POST /v1/chat/completions` streams an answer whose first token comes
--first-token-ms after the request and the others at --tokens-per-s, --answer-tokens in all.
Each token's text carries the wall-clock time it was written to the socket (`@<time.time()>`),
so a client reading the relayed delta knows how long the token spent in the server; the first
token also carries the time the request arrived, the number of messages it held and their
characters (`^<time>:<messages>:<chars>`), fixed-width so that every answer has the same length
in tokens. `--pad-words` appends filler words to the last token. `GET /v1/models` lists
`bench-model`. A request that does not ask for streaming gets the whole answer at once, after
the same pacing.

Written on asyncio and httptools (as bench/fake_model.py) and run in its own process, so its
pacing does not wait on the server's event loop and it takes little of the machine's CPU.

    python bench/paced_backend.py PORT [--first-token-ms 300] [--tokens-per-s 30]
        [--answer-tokens 40] [--pad-words 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httptools
import uvloop

MODEL = "bench-model"
FILLER = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor"


def arrival_stamp(arrived: float, messages: int, chars: int) -> str:
    """The first token's prefix; fixed-width, so its length in tokens never changes."""
    return f"^{arrived:017.6f}:{messages:05d}:{chars:09d} "


def emit_stamp(sent: float) -> str:
    return f"@{sent:017.6f} "


def filler(words: int) -> str:
    vocabulary = FILLER.split()
    return " ".join(vocabulary[i % len(vocabulary)] for i in range(words))


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {"id": "chatcmpl-paced", "object": "chat.completion.chunk", "created": 1,
               "model": MODEL, "choices": [{"index": 0, "delta": delta,
                                            "finish_reason": finish}]}
    event = f"data: {json.dumps(payload)}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(event), event)


def _whole(body: bytes, status: int = 200) -> bytes:
    reason = b"OK" if status == 200 else b"Not Found"
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
            % (status, reason, len(body)) + body)


MODELS = _whole(json.dumps({"object": "list", "data": [
    {"id": MODEL, "object": "model", "created": 1700000000, "owned_by": "bench"}]}).encode())
NOT_FOUND = _whole(b'{"error": {"message": "not found"}}', 404)
STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
               b"transfer-encoding: chunked\r\n\r\n")


class Pacing:
    def __init__(self, args: argparse.Namespace) -> None:
        self.first = args.first_token_ms / 1000
        self.step = 1 / args.tokens_per_s if args.tokens_per_s > 0 else 0.0
        self.tokens = max(1, args.answer_tokens)
        self.pad = filler(args.pad_words) if args.pad_words else ""


class _Connection(asyncio.Protocol):
    """One kept-alive connection; requests on it are answered one after the other."""

    def __init__(self, pacing: Pacing) -> None:
        self.pacing = pacing
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.queue: asyncio.Queue[tuple[bytes, bytes, float]] = asyncio.Queue()
        self.transport: asyncio.Transport | None = None
        self.worker: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.worker = asyncio.get_running_loop().create_task(self._answer_all())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.queue.put_nowait((self.url, b"".join(self.body), time.time()))
        self.url, self.body = b"", []

    async def _answer_all(self) -> None:
        while True:
            url, body, arrived = await self.queue.get()
            if url.endswith(b"/chat/completions"):
                await self._complete(json.loads(body), arrived)
            elif url.endswith(b"/models"):
                self._write(MODELS)
            else:
                self._write(NOT_FOUND)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def _complete(self, request: dict[str, Any], arrived: float) -> None:
        p = self.pacing
        messages = request.get("messages") or []
        chars = sum(len(m["content"]) if isinstance(m.get("content"), str)
                    else len(json.dumps(m.get("content"))) for m in messages)
        prefix = arrival_stamp(arrived, len(messages), chars)
        loop = asyncio.get_running_loop()
        start = loop.time()
        stream = bool(request.get("stream"))
        if stream:
            self._write(STREAM_HEAD + _chunk({"role": "assistant", "content": ""}))
        texts = []
        for index in range(p.tokens):
            delay = start + p.first + index * p.step - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            text = (prefix if index == 0 else "") + emit_stamp(time.time())
            if index == p.tokens - 1:
                text += p.pad
            texts.append(text)
            if stream:
                self._write(_chunk({"content": text}))
        usage = {"prompt_tokens": chars // 4, "completion_tokens": p.tokens,
                 "total_tokens": chars // 4 + p.tokens}
        if not stream:
            self._write(_whole(json.dumps({
                "id": "chatcmpl-paced", "object": "chat.completion", "created": 1,
                "model": MODEL, "usage": usage, "choices": [{
                    "index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "".join(texts)}}]}).encode()))
            return
        tail = _chunk({}, "stop")
        if (request.get("stream_options") or {}).get("include_usage"):
            event = f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode()
            tail += b"%x\r\n%s\r\n" % (len(event), event)
        event = b"data: [DONE]\n\n"
        self._write(tail + b"%x\r\n%s\r\n0\r\n\r\n" % (len(event), event))


async def serve(port: int, pacing: Pacing) -> None:
    server = await asyncio.get_running_loop().create_server(
        lambda: _Connection(pacing), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("port", type=int)
    p.add_argument("--first-token-ms", type=float, default=300.0)
    p.add_argument("--tokens-per-s", type=float, default=30.0, help="0: all at once")
    p.add_argument("--answer-tokens", type=int, default=40)
    p.add_argument("--pad-words", type=int, default=0)
    args = p.parse_args()
    uvloop.run(serve(args.port, Pacing(args)))


if __name__ == "__main__":
    main()
