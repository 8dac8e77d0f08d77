"""One OpenAI-compatible Chat Completions endpoint, as the configuration declares it.

Requests go through an httpx client of the backend's own (httpx's connection pool, capped at the
backend's `max_concurrency`; a request over the cap waits here, in this server, not in the
backend's queue). The engine's `ChatRequest` is mapped to what this backend takes (`body`).

Time bounds (`Timeouts`): connecting, the first token (every retry included), the silence
between two chunks, and a whole answer. Retries, with backoff honouring `retry-after`, happen
only before the first token and only for failures that did not leave work queued at the
backend: a refused connection, 429 and 5xx. A read that timed out is never repeated: a busy
single-slot server would only get another copy of the request to queue.

A backend that cannot stream an answer that may call tools (llama-cpp-python's function-calling
formats answer 200, then abort) is asked without streaming, and the answer relayed as events;
`stream_tools: false` says so up front, and an abort before anything was relayed teaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx

from assistants_server.backends.chat import ASKED_FOR, BackendError, ChatEvent, ChatRequest
from assistants_server.backends.clock import Clock
from assistants_server.backends.config import BackendConfig
from assistants_server.backends.sse import completion_events, status_error, stream_events
from assistants_server.backends.tagged import stream_tagged

RETRYABLE = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0
IMAGE_PLACEHOLDER = "[An image was attached here; this model cannot see images.]"

log = logging.getLogger(__name__)


class ChatCompletionsBackend:
    def __init__(self, config: BackendConfig, *, backoff_seconds: float = 0.5) -> None:
        self.config = config
        self.name = config.name
        self.backoff_seconds = backoff_seconds
        self.stream_tools = config.stream_tools
        timeouts = config.timeouts
        limit = config.max_concurrency
        # Streams are read byte for byte: asked uncompressed (an operator's header wins).
        headers = {"Accept-Encoding": "identity", **config.headers}
        if (key := config.resolved_api_key()) is not None:
            headers["Authorization"] = f"Bearer {key}"
        # Reads are bounded by the first-token and idle clocks of `_clock`, not by httpx.
        self.http = httpx.AsyncClient(
            base_url=config.base_url, headers=headers,
            timeout=httpx.Timeout(None, connect=timeouts.connect, write=timeouts.connect),
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit or 64))
        # Model lists and embeddings: outside the answers' slots (a busy single-slot server
        # still lists its models), bounded as a first token is.
        self.meta = httpx.AsyncClient(
            base_url=config.base_url, headers=headers,
            timeout=httpx.Timeout(timeouts.first_token, connect=timeouts.connect))
        self._slots = asyncio.Semaphore(limit) if limit else None

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.meta.aclose()

    def body(self, request: ChatRequest, model: str, *, stream: bool = True) -> dict[str, Any]:
        """The JSON body of `POST /chat/completions` for this backend."""
        body: dict[str, Any] = {"model": model, "messages": self._messages(request.messages)}
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        if request.tools and self.config.tool_calling != "none":
            body["tools"] = request.tools
            if request.tool_choice is not None:
                body["tool_choice"] = request.tool_choice
            self._map_named_choice(body)
            if request.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = request.parallel_tool_calls
        limit = request.max_completion_tokens or self.config.max_completion_tokens
        if limit is not None:
            body[self.config.token_limit_parameter] = limit
        optional = {"temperature": request.temperature, "top_p": request.top_p,
                    "reasoning_effort": request.reasoning_effort,
                    "response_format": request.response_format}
        body.update({k: v for k, v in optional.items() if v is not None})
        return body

    def _messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Image parts as they are for a vision backend; for a text-only one, a placeholder
        that tells the model an image was there, rather than dropping it silently."""
        if self.config.vision:
            return messages
        mapped = []
        for message in messages:
            content = message.get("content")
            if isinstance(content, list) and any(p.get("type") == "image_url" for p in content):
                text = "\n".join(p["text"] if p.get("type") == "text" else IMAGE_PLACEHOLDER
                                 for p in content)
                message = {**message, "content": text}
            mapped.append(message)
        return mapped

    async def stream_chat(self, request: ChatRequest, model: str | None = None,
                          ) -> AsyncIterator[ChatEvent]:
        """The answer of `model` (default: the request's), as events."""
        target = model or request.model

        def send(req: ChatRequest) -> AsyncIterator[ChatEvent]:
            return self._answer(req, target)

        if request.tools and self.config.tool_calling == "tagged":
            async for event in stream_tagged(send, request):
                yield event
            return
        async for event in send(request):
            yield event

    async def _answer(self, request: ChatRequest, model: str) -> AsyncIterator[ChatEvent]:
        tools = bool(request.tools) and self.config.tool_calling == "native"
        if tools and self.stream_tools is False:
            async for event in self._complete(request, model):
                yield event
            return
        relayed = False
        try:
            async for event in self._stream(request, model):
                relayed = True
                yield event
        except BackendError as exc:
            # Only an answer begun and broken off says "cannot stream this"; a refusal or a
            # timeout would be repeated, or piled on a busy backend, for nothing.
            if relayed or not tools or self.stream_tools is not None or not exc.cut or \
                    exc.context_length:
                raise
            events = [event async for event in self._complete(request, model)]
            # Learnt only once the unstreamed answer came: the failure was the streaming.
            log.warning("backend %s, for %s, failed to stream an answer that may call tools "
                        "(%s) and answered without streaming: asking it so from now on",
                        self.name, ASKED_FOR.get(), exc.message)
            self.stream_tools = False
            for event in events:
                yield event

    async def _stream(self, request: ChatRequest, model: str) -> AsyncIterator[ChatEvent]:
        body = self.body(request, model)
        async with self._slot():
            # The first-token clock starts once this server lets the request go: waiting
            # here for a busy backend's slot is not the backend failing to answer.
            clock = Clock(self.config, asyncio.get_running_loop())
            response = await self._open(body, model, clock)
            try:
                async for event in stream_events(clock.chunks(response), self.name,
                                                 thinking=clock.answering):
                    clock.answering()
                    yield event
            finally:
                await response.aclose()

    async def _complete(self, request: ChatRequest, model: str) -> AsyncIterator[ChatEvent]:
        body = self.body(request, model, stream=False)
        async with self._slot():
            clock = Clock(self.config, asyncio.get_running_loop(), whole=True)
            response = await self._open(body, model, clock)
            try:
                data = b"".join([chunk async for chunk in clock.chunks(response)])
            finally:
                await response.aclose()
        for event in completion_events(data, self.name):
            yield event

    @contextlib.asynccontextmanager
    async def forward(
        self, path: str, body: dict[str, Any]
    ) -> AsyncIterator[tuple[httpx.Response, Clock]]:
        """A client's own request body, relayed to `path` with this backend's slot, retries and
        time bounds: the open 200 response and the clock that bounds its reads."""
        if path == "/chat/completions":
            body = self._relayed_body(body)
        # Embeddings go outside the answers' slots, as the engine's own do.
        slot = self._slot() if path == "/chat/completions" else contextlib.nullcontext()
        client = self.http if path == "/chat/completions" else self.meta
        async with slot:
            clock = Clock(self.config, asyncio.get_running_loop(),
                          whole=not body.get("stream"))
            response = await self._open(body, str(body.get("model")), clock, path, client)
            try:
                yield response, clock
            finally:
                await response.aclose()

    def _relayed_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The token-limit parameter under the name this backend takes, and images replaced
        for a text-only backend: what `body` maps for the engine's requests."""
        body = dict(body)
        other = ({"max_completion_tokens", "max_tokens"} - {self.config.token_limit_parameter})
        (name,) = other
        if name in body and self.config.token_limit_parameter not in body:
            body[self.config.token_limit_parameter] = body.pop(name)
        if isinstance(body.get("messages"), list):
            body["messages"] = self._messages(body["messages"])
        self._map_named_choice(body)
        return body

    def _map_named_choice(self, body: dict[str, Any]) -> None:
        """A tool_choice naming a function, for a server that takes only strings: the same
        demand in words it knows, that function alone and `required`."""
        named = body.get("tool_choice")
        if isinstance(named, dict) and body.get("tools") and not self.config.named_tool_choice:
            wanted = (named.get("function") or {}).get("name")
            body["tools"] = [tool for tool in body["tools"]
                             if (tool.get("function") or {}).get("name") == wanted]
            body["tool_choice"] = "required"

    def _slot(self) -> asyncio.Semaphore | contextlib.nullcontext[None]:
        return self._slots or contextlib.nullcontext()

    async def _open(
        self, body: dict[str, Any], model: str, clock: Clock, path: str = "/chat/completions",
        client: httpx.AsyncClient | None = None,
    ) -> httpx.Response:
        """The response to `body` once it answered 200, retrying what may be retried."""
        for attempt in range(self.config.retries + 1):
            try:
                async with clock.bound():
                    http = client or self.http
                    response = await http.send(
                        http.build_request("POST", path, json=body),
                        stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Its address is for the operator's log, not for a client's `last_error`.
                log.warning("backend %s at %s, for %s, could not be reached: %r", self.name,
                            self.config.base_url, ASKED_FOR.get(), exc)
                failure = BackendError(
                    "server_error", f"The model backend '{self.name}' could not be reached "
                    f"({exc!r}).", fallback=True)
                hinted = None
            except httpx.TransportError as exc:  # the request went out: never sent twice
                raise BackendError("server_error", f"The model backend '{self.name}' failed "
                                   f"while answering ({exc!r}).") from exc
            else:
                if response.status_code == 200:
                    return response
                async with clock.bound():
                    failure = await status_error(response, self.name, model)
                hinted = _retry_after(response)
                await response.aclose()
                if response.status_code not in RETRYABLE:
                    raise failure
            delay = hinted if hinted is not None else self._backoff(attempt)
            if attempt == self.config.retries or not clock.allows(delay):
                raise failure
            log.warning("backend %s, for %s: %s; retrying in %.1f s", self.name, ASKED_FOR.get(),
                        failure.message, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return float(self.backoff_seconds * 2**attempt * (1 - 0.25 * random.random()))


def _retry_after(response: httpx.Response) -> float | None:
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = response.headers.get(header)
        if value:
            try:
                return min(MAX_RETRY_AFTER, max(0.0, float(value) * scale))
            except ValueError:
                continue
    return None
