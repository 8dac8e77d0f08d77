"""Every call to a model goes through here: the public name a client sent is resolved to a
backend and that backend's model name, then its fallbacks in order.

A name is matched exactly (a route's name or one of its aliases), then against the routes
whose names are patterns (`gpt-4-turbo*`), in the order declared, then by the catch-all `*`,
which passes the name through unchanged. The next backend is asked only when one failed
before its first token in a way that left nothing queued there (unreachable, 5xx, 429);
once a token has been relayed, the answer is that backend's.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from assistants_server.backends.chat import ASKED_FOR, BackendError, ChatEvent, ChatRequest
from assistants_server.backends.config import CATCH_ALL, ModelRoute, ModelsConfig
from assistants_server.backends.openai_compat import ChatCompletionsBackend

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    backend: ChatCompletionsBackend
    model: str


class ModelRouter:
    def __init__(self, config: ModelsConfig, backends: dict[str, ChatCompletionsBackend]) -> None:
        self.config = config
        self.backends = backends
        self._exact = {name: route for route in config.models for name in route.names}
        self._patterns = [route for route in config.models if is_pattern(route.name)
                          and route.name != CATCH_ALL]
        self._catch_all = next((r for r in config.models if r.name == CATCH_ALL), None)

    @classmethod
    def from_config(cls, config: ModelsConfig) -> ModelRouter:
        return cls(config, {b.name: ChatCompletionsBackend(b) for b in config.backends})

    async def aclose(self) -> None:
        for backend in self.backends.values():
            await backend.aclose()

    @property
    def configured(self) -> bool:
        return bool(self.config.models)

    def route(self, name: str) -> ModelRoute | None:
        if (route := self._exact.get(name)) is not None:
            return route
        for route in self._patterns:
            if fnmatch.fnmatchcase(name, route.name):
                return route
        return self._catch_all

    def targets(self, name: str) -> list[Target]:
        """Where `name` goes, first choice first; empty when no route serves it."""
        route = self.route(name)
        if route is None:
            return []
        # A named route's aliases reach the backend under the route's name; a pattern or the
        # catch-all passes the client's name through.
        default = name if is_pattern(route.name) else route.name
        return [Target(self.backends[target.backend], target.model or default)
                for target in route.targets]

    def is_catch_all(self, name: str) -> bool:
        return self.route(name) is self._catch_all and self._catch_all is not None

    def backend_for(self, name: str) -> ChatCompletionsBackend | None:
        targets = self.targets(name)
        return targets[0].backend if targets else None

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        targets = self.targets(request.model)
        if not targets:
            raise BackendError("invalid_prompt", f"The requested model '{request.model}' does "
                               "not exist on this server (no route in its configuration).")
        for number, target in enumerate(targets, start=1):
            relayed = False
            try:
                async for event in target.backend.stream_chat(request, target.model):
                    relayed = True
                    yield event
                return
            except BackendError as exc:
                if relayed or not exc.fallback or number == len(targets):
                    raise
                following = targets[number]
                log.warning("model %s, for %s: backend %s failed before its first token (%s); "
                            "falling back to backend %s", request.model, ASKED_FOR.get(),
                            target.backend.name, exc.message, following.backend.name)


def is_pattern(name: str) -> bool:
    return any(char in name for char in "*?[")
