"""The model names this server answers to, as `/v1/models` lists them and as assistants and
runs are checked against.

Named routes and their aliases are listed as declared. A catch-all route serves what its
backend serves: its names are the backend's own list (`GET {backend}/models`), kept for
`CATALOGUE_TTL` seconds and, when the backend is busy or down, the last good list is used. With
no route at all, the names of ASSISTANTS_MODELS are accepted (runs then fail saying that no
backend is configured), or any name when that is empty too.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any

import httpx

from assistants_server.backends.config import CATCH_ALL
from assistants_server.backends.openai_compat import ChatCompletionsBackend
from assistants_server.backends.router import ModelRouter, is_pattern
from assistants_server.kit.errors import (
    BackendUnavailableError,
    InvalidRequestError,
    PermissionDeniedError,
)

CATALOGUE_TTL = 30.0
log = logging.getLogger(__name__)


class ModelCatalog:
    def __init__(self, router: ModelRouter, names: list[str], created: int) -> None:
        self.router = router
        self.names = names  # ASSISTANTS_MODELS, for a server with no route
        self.created = created
        self._lists: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._failures: dict[str, BackendUnavailableError] = {}
        # A project's model permissions (`{"mode", "model_ids"}`), in a project's view.
        self.permissions: dict[str, Any] | None = None
        self.project_id: str | None = None

    def restricted(self, project_id: str, permissions: dict[str, Any] | None) -> ModelCatalog:
        """This catalog as `project_id` sees it: the models its permissions allow (sharing
        this one's cached backend lists)."""
        if permissions is None:
            return self
        view = copy.copy(self)
        view.project_id, view.permissions = project_id, permissions
        return view

    def permits(self, name: str) -> bool:
        if self.permissions is None:
            return True
        listed = name in self.permissions["model_ids"]
        return listed if self.permissions["mode"] == "allow_list" else not listed

    def check_permitted(self, name: str) -> None:
        """Refuse a model the project may not use, in the hosted service's words (403)."""
        if not self.permits(name):
            raise PermissionDeniedError(
                f"Project `{self.project_id}` does not have access to model `{name}`. An admin "
                "can change the project's model permissions.", param="model",
                code="model_not_found")

    async def list_models(self) -> list[dict[str, Any]]:
        return [model for model in await self._all_models() if self.permits(model["id"])]

    async def _all_models(self) -> list[dict[str, Any]]:
        models = [self._model(name, route.owned_by) for route in self.router.config.models
                  for name in route.names if not is_pattern(name)]
        if not self.router.configured:
            models = [self._model(name) for name in self.names]
        catch_all = self.router.route(CATCH_ALL) if self.router.configured else None
        if catch_all is not None and catch_all.name == CATCH_ALL:
            listed = {model["id"] for model in models}
            backend = self.router.backends[catch_all.backend]
            try:
                served = await self.backend_models(backend)
            except BackendUnavailableError:
                if not models:
                    raise  # nothing to list without it: say why
                log.warning("GET /v1/models lists the named routes only: the catch-all's "
                            "backend %s did not answer", backend.name)
                served = []
            models += [m for m in served if m["id"] not in listed]
        return models

    async def retrieve_model(self, name: str) -> dict[str, Any] | None:
        if not self.permits(name):
            return None
        for model in await self.list_models():
            if model["id"] == name:
                return model
        route = self.router.route(name) if self.router.configured else None
        if route is not None and route.name != CATCH_ALL:
            return self._model(name, route.owned_by)  # a name a pattern route serves
        return None

    async def check_model(self, name: str) -> None:
        """Refuse a model no route serves, in the hosted service's words (400 model_not_found),
        or one the project may not use (403)."""
        self.check_permitted(name)
        if not self.router.configured:
            if self.names and name not in self.names:
                raise _unknown(name, f"This server accepts: {', '.join(self.names)}")
            return
        route = self.router.route(name)
        if route is None:
            raise _unknown(name, f"This server serves: {', '.join(self._public())}")
        if route.name != CATCH_ALL:
            return
        try:
            served = [m["id"] for m in await self.backend_models(
                self.router.backends[route.backend])]
        except BackendUnavailableError:
            return  # cannot tell now: the run will say what the backend answers
        if served and name not in served:  # an empty list tells nothing
            raise _unknown(name, f"Its backend '{route.backend}' serves: {', '.join(served)}; "
                           "map the name to one of them under `models:` in the configuration "
                           "file")

    def _public(self) -> list[str]:
        return [name for route in self.router.config.models for name in route.names]

    def _model(self, name: str, owned_by: str = "assistants-server") -> dict[str, Any]:
        return {"id": name, "object": "model", "created": self.created, "owned_by": owned_by}

    async def backend_models(self, backend: ChatCompletionsBackend) -> list[dict[str, Any]]:
        """The backend's own list: asked at most every CATALOGUE_TTL seconds, failures
        included (callers never queue behind a backend that does not answer), and the last
        good list while it cannot answer (a busy single-slot server answers 502 or nothing)."""
        lock = self._locks.setdefault(backend.name, asyncio.Lock())
        async with lock:
            asked, models = self._lists.get(backend.name, (-CATALOGUE_TTL, []))
            failure = self._failures.get(backend.name)
            if time.monotonic() - asked < CATALOGUE_TTL:
                if failure is not None and not models:
                    raise failure
                return models
            try:
                models = await fetch_backend_models(backend)
                self._failures.pop(backend.name, None)
            except BackendUnavailableError as exc:
                self._failures[backend.name] = exc
                self._lists[backend.name] = (time.monotonic(), models)
                if models:
                    return models
                raise
            self._lists[backend.name] = (time.monotonic(), models)
            return models


def _unknown(name: str, served: str) -> InvalidRequestError:
    return InvalidRequestError(f"The requested model '{name}' does not exist. {served} "
                               "(see GET /v1/models).", param="model", code="model_not_found")


async def fetch_backend_models(backend: ChatCompletionsBackend) -> list[dict[str, Any]]:
    url = f"{backend.config.base_url}/models"
    try:
        response = await backend.meta.get(
            "/models", timeout=httpx.Timeout(backend.config.timeouts.connect))
    except httpx.HTTPError as exc:
        raise BackendUnavailableError(
            f"The model backend '{backend.name}' at {backend.config.base_url} could not be "
            f"reached ({type(exc).__name__}: {exc}). Check its base_url.",
            code="backend_unavailable") from exc
    if response.status_code != 200:
        raise BackendUnavailableError(
            f"The model backend '{backend.name}' answered GET {url} with HTTP "
            f"{response.status_code}: {response.text[:300]}", code="backend_error")
    try:
        return [_as_model(item) for item in response.json()["data"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackendUnavailableError(
            f"The model backend '{backend.name}''s GET {url} did not return an OpenAI model "
            f"list ({type(exc).__name__}).", code="backend_error") from exc


def _as_model(item: dict[str, Any]) -> dict[str, Any]:
    # Some OpenAI-compatible servers omit `created` or `owned_by`; the SDK model wants both.
    return {"id": str(item["id"]), "object": "model", "created": int(item.get("created") or 0),
            "owned_by": str(item.get("owned_by") or "backend")}
