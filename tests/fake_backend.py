"""A fake OpenAI-compatible backend on a loopback socket, for tests that need the model server.

`GET /v1/models` lists the given models. `POST /v1/chat/completions` plays the next entry of
`app.state.script` (or answers "Hello!"): a streamed text answer, streamed tool calls, an HTTP
error with headers, a garbled or truncated stream, or a reply that hangs before
or after its text. Every request body is
kept in `app.state.bodies` so tests can check what the server sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    garbled: bool = False
    garbled_after_text: bool = False
    truncated: bool = False
    hang_seconds: float = 0.0
    stall_seconds: float = 0.0
    chunk_chars: int = 4
    chunk_pause: float = 0.0  # seconds before each text chunk (a model writing at its pace)
    stamp_first: bool = False  # the first text chunk is the wall-clock time it was sent
    usage: tuple[int, int] = (10, 5)
    finish: str | None = None
    no_finish: bool = False  # ends with [DONE] but never gave a finish_reason
    # Like llama-cpp-python's function-calling formats: a streamed request with tools gets
    # 200 and then an error chunk instead of an answer.
    refuse_streaming_tools: bool = False
    error_chunk: str | None = None  # an error object mid-stream, after the text
    abort: bool = False  # the connection is dropped after the text, mid-answer
    reasoning: list[str] = field(default_factory=list)  # reasoning_content chunks, first
    reasoning_pause: float = 0.0  # seconds before each reasoning chunk


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    payload = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
               "model": "fake", "choices": [{"index": 0, "delta": delta,
                                             "finish_reason": finish}]}
    return f"data: {json.dumps(payload)}\n\n"


async def _stream(reply: Reply, usage_chunk: bool = True) -> AsyncIterator[str]:
    """The reply as OpenAI streams it; the usage chunk (no choices) only when the request asked
    for it with stream_options.include_usage, as OpenAI does."""
    yield _chunk({"role": "assistant", "content": ""})
    if reply.hang_seconds:
        await asyncio.sleep(reply.hang_seconds)
    if reply.garbled:
        yield "data: {this is not json\n\n"
        return
    for thought in reply.reasoning:
        await asyncio.sleep(reply.reasoning_pause)
        yield _chunk({"reasoning_content": thought})
    if reply.stamp_first:
        yield _chunk({"content": f"{time.time():.6f} "})
    for start in range(0, len(reply.text), reply.chunk_chars):
        if reply.chunk_pause:
            await asyncio.sleep(reply.chunk_pause)
        yield _chunk({"content": reply.text[start:start + reply.chunk_chars]})
    if reply.garbled_after_text:
        yield "data: {this is not json\n\n"
        return
    if reply.abort:
        raise ConnectionAbortedError("the fake drops the connection mid-answer")
    if reply.stall_seconds:
        await asyncio.sleep(reply.stall_seconds)
    for index, call in enumerate(reply.tool_calls):
        yield _chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                      "function": {"name": call["name"], "arguments": ""}}]})
        arguments = call["arguments"]
        for start in range(0, len(arguments), 5):
            yield _chunk({"tool_calls": [{"index": index, "function": {
                "arguments": arguments[start:start + 5]}}]})
    if reply.truncated:
        return
    if reply.error_chunk is not None:
        yield f"data: {json.dumps({'error': {'message': reply.error_chunk}})}\n\n"
        return
    if not reply.no_finish:
        yield _chunk({}, reply.finish or ("tool_calls" if reply.tool_calls else "stop"))
    usage = {"prompt_tokens": reply.usage[0], "completion_tokens": reply.usage[1],
             "total_tokens": sum(reply.usage)}
    if usage_chunk:
        yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


def _completion(reply: Reply) -> dict[str, Any]:
    """A whole (non-streamed) chat.completion."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in reply.tool_calls]
    finish = reply.finish or ("tool_calls" if reply.tool_calls else "stop")
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": "fake",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": reply.usage[0], "completion_tokens": reply.usage[1],
                      "total_tokens": sum(reply.usage)}}


async def _refusal() -> AsyncIterator[str]:
    yield _chunk({"role": "assistant", "content": ""})
    message = "Automatic streaming tool choice is not supported"
    yield f"data: {json.dumps({'error': {'message': message, 'type': 'server_error'}})}\n\n"


def create_configured_backend() -> FastAPI:
    """The fake for benchmarks, in its own process: every reply is the same, set by
    FAKE_REPLY_CHARS (a text that long), FAKE_CHUNK_CHARS, FAKE_HANG_SECONDS (a pause after
    the first chunk) and FAKE_STAMP=1 (the first text chunk is the time it was sent)."""
    chars = int(os.environ.get("FAKE_REPLY_CHARS", "0"))
    words = ("lorem ipsum dolor sit amet " * (chars // 27 + 1))[:chars]
    default = Reply(text=words or "Hello!",
                    chunk_chars=int(os.environ.get("FAKE_CHUNK_CHARS", "4")),
                    hang_seconds=float(os.environ.get("FAKE_HANG_SECONDS", "0")),
                    stamp_first=os.environ.get("FAKE_STAMP") == "1")
    return create_fake_backend(default=default)


def create_fake_backend(
    models: list[str] | None = None, api_key: str | None = None, default: Reply | None = None
) -> FastAPI:
    app = FastAPI()
    app.state.requests = []
    app.state.bodies = []
    app.state.script = []
    app.state.peers = []  # client (host, port) of each chat request: one per connection

    def refused(request: Request) -> JSONResponse | None:
        app.state.requests.append(dict(request.headers))
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        return None

    @app.get("/v1/models")
    async def list_models(request: Request) -> Any:
        if (refusal := refused(request)) is not None:
            return refusal
        return {"object": "list", "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"}
            for m in models or []]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        if (refusal := refused(request)) is not None:
            return refusal
        app.state.bodies.append(await request.json())
        app.state.peers.append(request.client)
        reply: Reply = (app.state.script.pop(0) if app.state.script
                        else default or Reply(text="Hello!"))
        if reply.status != 200:
            message = reply.error_chunk or f"fake failure {reply.status}"
            return JSONResponse({"error": {"message": message}},
                                status_code=reply.status, headers=reply.headers)
        body = app.state.bodies[-1]
        if not body.get("stream"):
            if reply.hang_seconds:
                await asyncio.sleep(reply.hang_seconds)
            return _completion(reply)
        if reply.refuse_streaming_tools and body.get("tools"):
            return StreamingResponse(_refusal(), media_type="text/event-stream")
        usage_chunk = bool((body.get("stream_options") or {}).get("include_usage"))
        echoed = f'"model": {json.dumps(body.get("model"))}'  # as real servers do
        chunks = (chunk.replace('"model": "fake"', echoed)
                  async for chunk in _stream(reply, usage_chunk))
        return StreamingResponse(chunks, media_type="text/event-stream")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        if (refusal := refused(request)) is not None:
            return refusal
        body = await request.json()
        app.state.bodies.append(body)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        # A deterministic vector per text: its length and its first letters' codes.
        data = [{"object": "embedding", "index": i,
                 "embedding": [float(len(text)), *[float(ord(c)) for c in text[:3].ljust(3)]]}
                for i, text in enumerate(inputs)]
        return {"object": "list", "data": data, "model": body["model"],
                "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}}

    return app
