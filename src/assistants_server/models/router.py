"""HTTP endpoints of /v1/models: the public model names of the configuration (and, for a
catch-all route, what its backend serves), in OpenAI's shapes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from assistants_server.api.deps import ModelsDep
from assistants_server.kit.errors import NotFoundError

router = APIRouter(prefix="/v1/models", tags=["models"])


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


@router.get("")
async def list_models(models: ModelsDep) -> ModelList:
    return ModelList(data=[Model(**m) for m in await models.list_models()])


@router.get("/{model:path}")
async def retrieve_model(model: str, models: ModelsDep) -> Model:
    found = await models.retrieve_model(model)
    if found is None:
        raise NotFoundError(
            f"The model '{model}' does not exist or you do not have access to it.",
            param="model", code="model_not_found")
    return Model(**found)
