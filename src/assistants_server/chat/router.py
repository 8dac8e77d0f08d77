"""HTTP endpoints of the pass-through: `POST /v1/chat/completions` and `POST /v1/embeddings`.

The client's body goes to the backend its model routes to, with that backend's model name,
token-limit parameter and time bounds, falling back to the next backend as runs do (only
before anything was relayed). The answer comes back as the backend gave it, under the name the
client asked for. A backend whose tool calls this server parses (`tool_calling: tagged`) is
asked through the engine's path instead, and its answer rendered as Chat Completions
(`chat/render.py`). Errors are in the OpenAI envelope.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from assistants_server.api.deps import ModelsDep
from assistants_server.backends.chat import BackendError
from assistants_server.backends.clock import Clock
from assistants_server.backends.openai_compat import ChatCompletionsBackend
from assistants_server.backends.router import ModelRouter, Target
from assistants_server.chat.render import api_error, error_chunk, tagged_completion
from assistants_server.kit.errors import APIError, BackendUnavailableError, InvalidRequestError

router = APIRouter(prefix="/v1", tags=["chat"])
# A chunk that carries some of the answer (not the role alone, nor a keep-alive).
_ANSWERING = re.compile(rb'"(?:content|reasoning_content|arguments)"\s*:\s*"[^"]')


class ModelNotFoundError(APIError):
    status_code = 404


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise InvalidRequestError(
            "We could not parse the JSON body of your request. The body must be a JSON "
            "object.") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequestError("You must provide a model parameter.", param="model")
    return body


def _targets(models: ModelRouter, name: str) -> list[Target]:
    targets = models.targets(name) if models.configured else []
    if not targets:
        raise ModelNotFoundError(
            f"The model '{name}' does not exist or you do not have access to it.",
            param="model", code="model_not_found")
    return targets


@router.post("/chat/completions")
async def create_chat_completion(request: Request, catalog: ModelsDep) -> Response:
    body = await _json_body(request)
    catalog.check_permitted(body["model"])
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise InvalidRequestError("Missing required parameter: 'messages'.", param="messages")
    models: ModelRouter = request.app.state.models
    targets = _targets(models, body["model"])
    if body.get("tools") and any(t.backend.config.tool_calling == "tagged" for t in targets):
        # Through the engine's path, fallbacks included: this server parses the tool calls.
        return await tagged_completion(models, body)
    return await _relay(targets, "/chat/completions", body)


@router.post("/embeddings")
async def create_embedding(request: Request, catalog: ModelsDep) -> Response:
    body = await _json_body(request)
    catalog.check_permitted(body["model"])
    if "input" not in body:
        raise InvalidRequestError("Missing required parameter: 'input'.", param="input")
    models: ModelRouter = request.app.state.models
    chosen = request.app.state.settings.models_config.embeddings
    route = models.route(body["model"]) if models.configured else None
    if chosen is not None and (route is None or models.is_catch_all(body["model"])):
        # Code written for OpenAI names its embedding model; the operator chose the one used.
        targets = [Target(models.backends[chosen.backend], chosen.model)]
    else:
        targets = _targets(models, body["model"])
    return await _relay(targets, "/embeddings", body)


async def _relay(targets: list[Target], path: str, body: dict[str, Any]) -> Response:
    """The first target's answer; the next one's when it failed before answering."""
    public = body["model"]
    for number, target in enumerate(targets, start=1):
        stack = contextlib.AsyncExitStack()
        try:
            response, clock = await stack.enter_async_context(
                target.backend.forward(path, {**body, "model": target.model}))
        except BackendError as exc:
            await stack.aclose()
            if exc.fallback and number < len(targets):
                continue
            raise api_error(exc) from None
        if not body.get("stream"):
            async with stack:
                try:
                    data = b"".join([chunk async for chunk in clock.chunks(response)])
                except BackendError as exc:
                    raise api_error(exc) from None
            return _renamed(data, public, target.backend)
        names = (_model_field(target.model), _model_field(public))
        return StreamingResponse(_stream(stack, response, clock, names),
                                 media_type="text/event-stream")
    raise AssertionError("unreachable")


def _model_field(name: str) -> bytes:
    return b'"model":' + json.dumps(name).encode()


async def _stream(
    stack: contextlib.AsyncExitStack, response: Any, clock: Clock, names: tuple[bytes, bytes],
) -> AsyncIterator[bytes]:
    """The backend's stream as it comes, under the public model name; a stall or a cut ends
    it with an error event."""
    backend_name, public = names
    spaced = backend_name.replace(b":", b": ", 1)
    async with stack:
        try:
            async for chunk in clock.chunks(response):
                # From the first token on, the idle bound (searched for until then only).
                if clock.waiting_first and _ANSWERING.search(chunk):
                    clock.answering()
                yield chunk.replace(backend_name, public).replace(spaced, public)
        except BackendError as exc:
            yield error_chunk(exc)


def _renamed(data: bytes, public: str, backend: ChatCompletionsBackend) -> Response:
    try:
        answer = json.loads(data)
    except ValueError:
        raise BackendUnavailableError(
            f"The model backend '{backend.name}' answered something that is not JSON: "
            f"{data[:200]!r}", code="backend_error") from None
    if isinstance(answer, dict) and "model" in answer:
        answer["model"] = public
    return JSONResponse(answer)


