"""HTTP endpoints of /v1/models: the backend's list when one is configured, else the models
named in ASSISTANTS_MODELS."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from assistants_server.api.deps import SettingsDep
from assistants_server.api.errors import NotFoundError
from assistants_server.backends.catalog import fetch_backend_models

router = APIRouter(prefix="/v1/models", tags=["models"])


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


async def _models(request: Request, settings: SettingsDep) -> list[dict[str, Any]]:
    if settings.backend_base_url:
        return await fetch_backend_models(
            request.app.state.http, settings.backend_base_url, settings.backend_api_key
        )
    started: int = request.app.state.started_at
    return [
        {"id": name, "object": "model", "created": started, "owned_by": "assistants-server"}
        for name in settings.models
    ]


@router.get("")
async def list_models(request: Request, settings: SettingsDep) -> ModelList:
    return ModelList(data=[Model(**m) for m in await _models(request, settings)])


@router.get("/{model:path}")
async def retrieve_model(model: str, request: Request, settings: SettingsDep) -> Model:
    for item in await _models(request, settings):
        if item["id"] == model:
            return Model(**item)
    raise NotFoundError(
        f"The model '{model}' does not exist or you do not have access to it.",
        param="model", code="model_not_found",
    )
