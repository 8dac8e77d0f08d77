"""HTTP endpoints of /v1/assistants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from assistants_server.api.deps import ModelsDep, SessionDep
from assistants_server.api.pagination import ListPage, ListQueryDep, page_of
from assistants_server.assistants import service
from assistants_server.assistants.schemas import (
    Assistant,
    CreateAssistantRequest,
    ModifyAssistantRequest,
)
from assistants_server.kit.objects import DeletedObject

router = APIRouter(prefix="/v1/assistants", tags=["assistants"])
AssistantId = Annotated[str, Path()]


@router.post("")
async def create_assistant(
    body: CreateAssistantRequest, session: SessionDep, models: ModelsDep
) -> Assistant:
    await models.check_model(body.model)
    row = await service.create_assistant(session, body)
    return Assistant.from_row(row)


@router.get("")
async def list_assistants(session: SessionDep, query: ListQueryDep) -> ListPage[Assistant]:
    rows, has_more = await service.list_assistants(session, query)
    return ListPage[Assistant](**page_of([Assistant.from_row(r) for r in rows], has_more))


@router.get("/{assistant_id}")
async def retrieve_assistant(assistant_id: AssistantId, session: SessionDep) -> Assistant:
    return Assistant.from_row(await service.get_assistant(session, assistant_id))


@router.post("/{assistant_id}")
async def modify_assistant(
    assistant_id: AssistantId,
    body: ModifyAssistantRequest,
    session: SessionDep,
    models: ModelsDep,
) -> Assistant:
    if body.model is not None:
        await models.check_model(body.model)
    row = await service.modify_assistant(session, assistant_id, body)
    return Assistant.from_row(row)


@router.delete("/{assistant_id}")
async def delete_assistant(assistant_id: AssistantId, session: SessionDep) -> DeletedObject:
    await service.delete_assistant(session, assistant_id)
    return DeletedObject(id=assistant_id, object="assistant.deleted")
