"""Rules and queries for assistants. Functions flush; the request commits."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.api.pagination import ListQuery, delete_listed, fetch_page
from assistants_server.assistants.schemas import CreateAssistantRequest, ModifyAssistantRequest
from assistants_server.db.models import AssistantRow
from assistants_server.kit.errors import InvalidRequestError, not_found
from assistants_server.kit.ids import check_id, new_id
from assistants_server.kit.metadata import merged_metadata
from assistants_server.tools.definitions import (
    dump_response_format,
    dump_tool_resources,
    dump_tools,
)
from assistants_server.vector_stores.resources import create_inline_stores


async def create_assistant(
    session: AsyncSession, body: CreateAssistantRequest
) -> AssistantRow:
    """A new assistant; its model was checked against the catalogue by the caller."""
    await create_inline_stores(session, body.tool_resources)
    row = AssistantRow(
        id=new_id("asst_"),
        created_at=int(time.time()),
        model=body.model,
        name=body.name,
        description=body.description,
        instructions=body.instructions,
        reasoning_effort=body.reasoning_effort,
        tools=dump_tools(body.tools),
        tool_resources=_with_defaults(dump_tools(body.tools),
                                      dump_tool_resources(body.tool_resources)),
        metadata_=body.metadata,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        response_format=dump_response_format(body.response_format),
    )
    session.add(row)
    await session.flush()
    return row


def _with_defaults(tools: list[Any], resources: dict[str, Any]) -> dict[str, Any]:
    """An assistant with code_interpreter shows its (empty) file list, as the service did."""
    if any(tool["type"] == "code_interpreter" for tool in tools) and (
            "code_interpreter" not in resources):
        return {**resources, "code_interpreter": {"file_ids": []}}
    return resources


# Built once: every run creation reads its assistant, and building a statement (its cache key
# above all) costs more than SQLite takes to answer it.
_BY_ID = select(AssistantRow).where(AssistantRow.id == bindparam("id"))


async def get_assistant(session: AsyncSession, assistant_id: str) -> AssistantRow:
    check_id(assistant_id, "asst_", "assistant_id")
    row = await session.scalar(_BY_ID, {"id": assistant_id})
    if row is None:
        raise not_found("assistant", assistant_id)
    return row


async def list_assistants(
    session: AsyncSession, query: ListQuery
) -> tuple[list[AssistantRow], bool]:
    return await fetch_page(session, AssistantRow, query)


async def modify_assistant(
    session: AsyncSession,
    assistant_id: str,
    body: ModifyAssistantRequest,
) -> AssistantRow:
    row = await get_assistant(session, assistant_id)
    sent = body.model_fields_set
    if "model" in sent:
        if body.model is None:
            raise InvalidRequestError("Invalid 'model': it cannot be null.", param="model")
        row.model = body.model
    for field in ("name", "description", "instructions", "reasoning_effort"):
        if field in sent:
            setattr(row, field, getattr(body, field))
    if "tools" in sent:
        row.tools = dump_tools(body.tools or [])
    if "tool_resources" in sent:
        await create_inline_stores(session, body.tool_resources)
        row.tool_resources = dump_tool_resources(body.tool_resources)
    if sent & {"tools", "tool_resources"}:
        row.tool_resources = _with_defaults(row.tools, row.tool_resources)
    if "metadata" in sent:
        row.metadata_ = merged_metadata(row.metadata_, body.metadata)
    if "temperature" in sent:
        row.temperature = 1.0 if body.temperature is None else body.temperature
    if "top_p" in sent:
        row.top_p = 1.0 if body.top_p is None else body.top_p
    if "response_format" in sent:
        row.response_format = dump_response_format(body.response_format)
    await session.flush()
    return row


async def delete_assistant(session: AsyncSession, assistant_id: str) -> None:
    row = await get_assistant(session, assistant_id)
    await delete_listed(session, row)
