"""Vector stores made on behalf of assistants and threads: `tool_resources.file_search.
vector_stores` creates one at once, and a message attachment for file_search puts its file in
the thread's own store (made on first use, expiring after 7 idle days, as the service did)."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.db.models import FileRow, ThreadRow, VectorStoreRow
from assistants_server.kit.errors import not_found
from assistants_server.tools.definitions import ToolResources
from assistants_server.vector_stores.schemas import CreateVectorStoreRequest, ExpiresAfter
from assistants_server.vector_stores.service import (
    attach_file,
    chunking,
    create_vector_store,
    is_expired,
)

THREAD_STORE_DAYS = 7


async def create_inline_stores(session: AsyncSession, resources: ToolResources | None) -> None:
    """Check that the stores and files `resources` names exist (in the caller's project: the
    session sees no other), then make the stores described in `vector_stores` and name them
    in `vector_store_ids`."""
    await _check_exist(session, resources)
    section = resources.file_search if resources is not None else None
    if section is None or not section.vector_stores:
        return
    for i, spec in enumerate(section.vector_stores):
        # model_construct: the spec was validated with its own bounds (10,000 files).
        request = CreateVectorStoreRequest.model_construct(
            file_ids=spec.file_ids, name=None, expires_after=None,
            chunking_strategy=spec.chunking_strategy, metadata=spec.metadata or {})
        store = await create_vector_store(
            session, request, where=f"tool_resources.file_search.vector_stores[{i}].")
        section.vector_store_ids.append(store.id)
    section.vector_stores = None


async def _check_exist(session: AsyncSession, resources: ToolResources | None) -> None:
    if resources is None:
        return
    where = "tool_resources"
    if resources.file_search is not None:
        for i, store_id in enumerate(resources.file_search.vector_store_ids):
            found = await session.scalar(
                select(VectorStoreRow.pk).where(VectorStoreRow.id == store_id))
            if found is None:
                raise not_found("vector store", store_id,
                                f"{where}.file_search.vector_store_ids[{i}]")
    if resources.code_interpreter is not None:
        wanted = resources.code_interpreter.file_ids
        found_ids = set(await session.scalars(select(FileRow.id).where(FileRow.id.in_(wanted))))
        for i, file_id in enumerate(wanted):
            if file_id not in found_ids:
                raise not_found("file", file_id, f"{where}.code_interpreter.file_ids[{i}]")


async def attach_to_thread(session: AsyncSession, thread: ThreadRow, file_ids: list[str]) -> None:
    """Index `file_ids` in the thread's vector store, making the store if it has none."""
    if not file_ids:
        return
    resources = dict(thread.tool_resources or {})
    ids = list((resources.get("file_search") or {}).get("vector_store_ids") or [])
    store = None
    if ids:
        store = await session.scalar(select(VectorStoreRow).where(VectorStoreRow.id == ids[0]))
    if store is None or is_expired(store, int(time.time())):  # files there would not be found
        store = await create_vector_store(session, CreateVectorStoreRequest.model_construct(
            file_ids=[], name=None, chunking_strategy=None, metadata={},
            expires_after=ExpiresAfter(anchor="last_active_at", days=THREAD_STORE_DAYS)))
        resources["file_search"] = {"vector_store_ids": [store.id]}
        thread.tool_resources = resources
    for file_id in dict.fromkeys(file_ids):
        await attach_file(session, store, file_id, chunking(None), {}, param="attachments")
