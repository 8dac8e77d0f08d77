"""`assistants-server doctor`: ask every configured backend what runs will ask of it, and say
what works and what does not, in words an operator can act on.

For each backend: its model list, a one-token answer, a function call (as the backend's
`tool_calling` mode asks for it, streamed as runs stream it), and an embedding where the
configuration's `embeddings` names it. Nothing is written to the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from assistants_server.backends.catalog import fetch_backend_models
from assistants_server.backends.chat import (
    BackendError,
    ChatRequest,
    TextDelta,
    ToolCallDelta,
)
from assistants_server.backends.config import CATCH_ALL, ModelsConfig
from assistants_server.backends.embeddings import EmbeddingError, OpenAIEmbedder
from assistants_server.backends.openai_compat import ChatCompletionsBackend
from assistants_server.backends.router import is_pattern
from assistants_server.kit.errors import BackendUnavailableError

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


@dataclass
class Check:
    backend: str
    what: str
    ok: bool
    said: str
    seconds: float


async def run_checks(config: ModelsConfig) -> list[Check]:
    checks: list[Check] = []
    for backend_config in config.backends:
        backend = ChatCompletionsBackend(backend_config, backoff_seconds=0.2)
        try:
            checks += await _check_backend(backend, config)
        finally:
            await backend.aclose()
    return checks


def _model_of(backend: ChatCompletionsBackend, config: ModelsConfig, listed: list[str]) -> str:
    """The backend-side model name a run would use: the first route's, else its first
    listed model."""
    for route in config.models:
        for target in route.targets:
            if target.backend == backend.name and (target.model or not is_pattern(route.name)):
                return target.model or route.name
    return listed[0] if listed else "default"


async def _check_backend(backend: ChatCompletionsBackend, config: ModelsConfig) -> list[Check]:
    name = backend.name
    listed: list[str] = []

    async def models() -> str:
        listed.extend(m["id"] for m in await fetch_backend_models(backend))
        return f"serves {', '.join(listed) or '(an empty list)'}"

    checks = [await _timed(name, "model list (GET /models)", models)]
    model = _model_of(backend, config, listed)
    checks.append(await _timed(name, f"a one-token answer from '{model}'",
                               lambda: _answer(backend, model)))
    if backend.config.tool_calling != "none":
        checks.append(await _timed(
            name, f"a function call ({backend.config.tool_calling} tool calling)",
            lambda: _tool_call(backend, model)))
    if config.embeddings is not None and config.embeddings.backend == name:
        embeddings_model = config.embeddings.model
        checks.append(await _timed(name, f"an embedding from '{embeddings_model}'",
                                   lambda: _embed(backend, embeddings_model)))
    return checks


async def _timed(backend: str, what: str, check: Callable[[], Awaitable[str]]) -> Check:
    started = time.monotonic()
    try:
        said, ok = await check(), True
    except (BackendError, BackendUnavailableError, EmbeddingError, httpx.HTTPError) as exc:
        said, ok = getattr(exc, "message", str(exc)), False
    return Check(backend, what, ok, said, time.monotonic() - started)


async def _answer(backend: ChatCompletionsBackend, model: str) -> str:
    request = ChatRequest(model=model, messages=[{"role": "user", "content": "Say OK."}],
                          max_completion_tokens=1)
    text = "".join([e.text async for e in backend.stream_chat(request)
                    if isinstance(e, TextDelta)])
    return f"answered {text!r}"


async def _tool_call(backend: ChatCompletionsBackend, model: str) -> str:
    request = ChatRequest(model=model, tools=[WEATHER], tool_choice="required",
                          messages=[{"role": "user", "content": "What is the weather in Paris?"}],
                          max_completion_tokens=200)
    events = [e async for e in backend.stream_chat(request)]
    calls = [e for e in events if isinstance(e, ToolCallDelta) and e.name]
    if not calls:
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        raise BackendError("server_error", f"answered with text instead of a call: {text[:200]!r}"
                           "; set tool_calling: tagged if its server does not parse tool calls, "
                           "or try a model trained for tool calling")
    streamed = "" if backend.stream_tools is not False else " (asked without streaming: the "\
        "backend cannot stream tool calls; set stream_tools: false to skip the first try)"
    return f"called {calls[0].name}{streamed}"


async def _embed(backend: ChatCompletionsBackend, model: str) -> str:
    embedder = OpenAIEmbedder(backend.meta, backend.config.base_url, model, attempts=1)
    vectors = await embedder.embed(["hello"])
    return f"{vectors.shape[1]} dimensions"


def report(checks: list[Check], config: ModelsConfig) -> str:
    lines = []
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        lines.append(f"[{mark}] {check.backend}: {check.what} ({check.seconds:.1f} s): "
                     f"{check.said}")
    for route in config.models:
        where = " -> ".join(f"{t.backend}:{t.model or route.name}" for t in route.targets)
        shown = "every other name" if route.name == CATCH_ALL else ", ".join(route.names)
        lines.append(f"model {shown}: {where}")
    if not config.backends:
        lines.append("No backend is configured: set ASSISTANTS_BACKEND_BASE_URL or write a "
                     "configuration file (see assistants.example.yaml) and pass --config.")
    return "\n".join(lines)


def doctor(config: ModelsConfig) -> int:
    checks = asyncio.run(run_checks(config))
    print(report(checks, config))
    return 0 if checks and all(check.ok for check in checks) else 1
