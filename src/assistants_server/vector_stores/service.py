"""Rules and queries of vector stores, their files and file batches.

Attaching a file writes an `in_progress` row; the ingestion worker (vector_stores/ingest.py)
parses, chunks and indexes it. A store's and a batch's `file_counts`, `usage_bytes` and status
are read from their files' rows when shown, so they can never disagree with them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, cast, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.api.pagination import ListQuery, delete_listed, fetch_page
from assistants_server.db.models import (
    AssistantRow,
    FileRow,
    ThreadRow,
    VectorStoreFileBatchRow,
    VectorStoreFileRow,
    VectorStoreRow,
)
from assistants_server.events.wakeups import wake_after_commit
from assistants_server.files.service import get_file
from assistants_server.kit.errors import InvalidRequestError, NotFoundError
from assistants_server.kit.ids import check_id, new_id
from assistants_server.kit.metadata import merged_metadata
from assistants_server.retrieval.chunking import resolve_chunking_strategy
from assistants_server.retrieval.index import SearchIndex
from assistants_server.vector_stores.schemas import (
    CreateVectorStoreRequest,
    FileCounts,
    ModifyVectorStoreRequest,
    VectorStore,
    VectorStoreFile,
)

DAY = 86_400
FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")


def chunking(value: dict[str, Any] | None, param: str = "chunking_strategy") -> dict[str, Any]:
    try:
        return resolve_chunking_strategy(value)
    except ValueError as exc:
        raise InvalidRequestError(f"Invalid '{param}': {exc}", param=param,
                                  code="invalid_value") from None


def _expiry(store: VectorStoreRow) -> None:
    after = store.expires_after
    store.expires_at = store.last_active_at + after["days"] * DAY if after else None


async def create_vector_store(
    session: AsyncSession, body: CreateVectorStoreRequest, *, where: str = ""
) -> VectorStoreRow:
    """`where`: the request path of `body` when it is part of a larger request (errors name
    e.g. `tool_resources.file_search.vector_stores[0].file_ids`)."""
    now = int(time.time())
    strategy = chunking(body.chunking_strategy, f"{where}chunking_strategy")
    store = VectorStoreRow(
        id=new_id("vs_"), created_at=now, metadata_=body.metadata, name=body.name,
        description=body.description,
        expires_after=body.expires_after.model_dump() if body.expires_after else None,
        last_active_at=now)
    _expiry(store)
    session.add(store)
    await session.flush()
    for file_id in body.file_ids:
        await attach_file(session, store, file_id, strategy, {}, param=f"{where}file_ids")
    return store


async def get_vector_store(session: AsyncSession, store_id: str) -> VectorStoreRow:
    check_id(store_id, "vs_", "vector_store_id")
    row = await session.scalar(select(VectorStoreRow).where(VectorStoreRow.id == store_id))
    if row is None:
        raise NotFoundError(f"No vector store found with id '{store_id}'.")
    return row


async def list_vector_stores(
    session: AsyncSession, query: ListQuery
) -> tuple[list[VectorStoreRow], bool]:
    return await fetch_page(session, VectorStoreRow, query)


async def modify_vector_store(
    session: AsyncSession, store_id: str, body: ModifyVectorStoreRequest
) -> VectorStoreRow:
    store = await get_vector_store(session, store_id)
    sent = body.model_fields_set
    if "name" in sent:
        store.name = body.name
    if "metadata" in sent:
        store.metadata_ = merged_metadata(store.metadata_, body.metadata)
    if "expires_after" in sent:
        store.expires_after = body.expires_after.model_dump() if body.expires_after else None
        _expiry(store)
    await session.flush()
    return store


async def delete_vector_store(session: AsyncSession, index: SearchIndex, store_id: str) -> None:
    store = await get_vector_store(session, store_id)
    # Rows first: deleting them waits for an ingestion writing one of them, whose chunks the
    # index removal that follows then sees.
    await session.execute(delete(VectorStoreFileRow).where(
        VectorStoreFileRow.vector_store_id == store.id))
    await index.remove(session, store.id)
    await session.execute(delete(VectorStoreFileBatchRow).where(
        VectorStoreFileBatchRow.vector_store_id == store.id))
    await _unlink(session, store.id)
    await delete_listed(session, store)


async def _unlink(session: AsyncSession, store_id: str) -> None:
    """A deleted store leaves the tool_resources of the assistants and threads naming it, as
    on the service (their lists show it gone)."""
    for column in (AssistantRow.tool_resources, ThreadRow.tool_resources):
        rows = await session.scalars(select(column.class_).where(
            cast(column, String).contains(store_id)))
        for row in rows:
            resources = dict(row.tool_resources or {})
            section = dict(resources.get("file_search") or {})
            section["vector_store_ids"] = [
                i for i in section.get("vector_store_ids", []) if i != store_id]
            resources["file_search"] = section
            row.tool_resources = resources


def is_expired(store: VectorStoreRow, now: int) -> bool:
    return store.expires_at is not None and store.expires_at <= now


async def touch(session: AsyncSession, stores: Sequence[VectorStoreRow], now: int) -> None:
    """The stores were used (searched): their idle clock starts again."""
    for store in stores:
        store.last_active_at = now
        _expiry(store)
    await session.flush()


async def file_counts(
    session: AsyncSession, column: Any, keys: Sequence[str]
) -> dict[str, tuple[FileCounts, int]]:
    """File counts and usage bytes per store (or batch), in one grouped query."""
    found: dict[str, tuple[FileCounts, int]] = {key: (FileCounts(), 0) for key in keys}
    if not keys:
        return found
    rows = await session.execute(
        select(column, VectorStoreFileRow.status, func.count(),
               func.coalesce(func.sum(VectorStoreFileRow.usage_bytes), 0))
        .where(column.in_(keys)).group_by(column, VectorStoreFileRow.status))
    for key, status, count, used in rows:
        counts, usage = found[key]
        setattr(counts, status, int(count))
        counts.total += int(count)
        found[key] = (counts, usage + int(used))
    return found


async def describe_vector_stores(
    session: AsyncSession, stores: Sequence[VectorStoreRow]
) -> list[VectorStore]:
    now = int(time.time())
    counts = await file_counts(session, VectorStoreFileRow.vector_store_id, [s.id for s in stores])
    shown = []
    for store in stores:
        files, usage = counts[store.id]
        status = "expired" if is_expired(store, now) else (
            "in_progress" if files.in_progress else "completed")
        shown.append(VectorStore(
            id=store.id, created_at=store.created_at, name=store.name or "", usage_bytes=usage,
            file_counts=files, status=status, expires_after=store.expires_after,
            expires_at=store.expires_at, last_active_at=store.last_active_at,
            metadata=store.metadata_))
    return shown


async def describe_vector_store(session: AsyncSession, store: VectorStoreRow) -> VectorStore:
    return (await describe_vector_stores(session, [store]))[0]


# Files of a store -----------------------------------------------------------------------


def show_file(row: VectorStoreFileRow) -> VectorStoreFile:
    return VectorStoreFile(
        id=row.id, usage_bytes=row.usage_bytes, created_at=row.created_at,
        vector_store_id=row.vector_store_id, status=row.status,
        last_error=row.last_error, chunking_strategy=row.chunking_strategy,
        attributes=row.attributes or {})


async def attach_file(
    session: AsyncSession, store: VectorStoreRow, file_id: str, strategy: dict[str, Any],
    attributes: dict[str, Any], *, batch_id: str | None = None, param: str = "file_id",
) -> VectorStoreFileRow:
    """Put a file in the store for the ingestion worker. A file already in the store is
    indexed again (with the new strategy) only when it is sent in a batch; otherwise the
    existing entry is returned, as the service did."""
    file = await _existing_file(session, file_id, param)
    existing = await session.scalar(select(VectorStoreFileRow).where(
        VectorStoreFileRow.vector_store_id == store.id, VectorStoreFileRow.id == file.id))
    if existing is not None:
        if batch_id is None:
            return existing
        existing.batch_id, existing.status, existing.last_error = batch_id, "in_progress", None
        existing.chunking_strategy, existing.attributes = strategy, attributes
        existing.lease_expires_at = None
        await session.flush()
        wake_after_commit(session, "ingestion")
        return existing
    row = VectorStoreFileRow(
        id=file.id, created_at=int(time.time()), metadata_={}, vector_store_id=store.id,
        batch_id=batch_id, status="in_progress", usage_bytes=0, chunking_strategy=strategy,
        attributes=attributes)
    session.add(row)
    await session.flush()
    wake_after_commit(session, "ingestion")
    return row


async def _existing_file(session: AsyncSession, file_id: str, param: str) -> FileRow:
    try:
        return await get_file(session, file_id)
    except (NotFoundError, InvalidRequestError):
        raise InvalidRequestError(
            f"Invalid '{param}': no file with id '{file_id}'. Upload it with POST /v1/files "
            "first and pass the id it returns.", param=param, code="invalid_value") from None


async def get_store_file(
    session: AsyncSession, store_id: str, file_id: str
) -> VectorStoreFileRow:
    store = await get_vector_store(session, store_id)
    row = await session.scalar(select(VectorStoreFileRow).where(
        VectorStoreFileRow.vector_store_id == store.id, VectorStoreFileRow.id == file_id))
    if row is None:
        raise NotFoundError(f"No file found with id '{file_id}' in vector store '{store_id}'.")
    return row


def _status_filter(value: str | None) -> list[Any]:
    if value is None:
        return []
    if value not in FILE_STATUSES:
        raise InvalidRequestError(
            f"Invalid 'filter': '{value}'. Expected one of: {', '.join(FILE_STATUSES)}.",
            param="filter", code="invalid_value")
    return [VectorStoreFileRow.status == value]


async def list_store_files(
    session: AsyncSession, store_id: str, query: ListQuery, status: str | None,
    batch_id: str | None = None,
) -> tuple[list[VectorStoreFileRow], bool]:
    store = await get_vector_store(session, store_id)
    scope = [VectorStoreFileRow.vector_store_id == store.id]
    if batch_id is not None:
        scope.append(VectorStoreFileRow.batch_id == batch_id)
    return await fetch_page(session, VectorStoreFileRow, query, *scope,
                            visible=_status_filter(status))


async def detach_file(
    session: AsyncSession, index: SearchIndex, store_id: str, file_id: str
) -> None:
    """Remove a file from a store (its chunks with it); the file itself stays."""
    row = await get_store_file(session, store_id, file_id)
    await session.delete(row)
    await session.flush()  # the row first, as in delete_vector_store
    await index.remove(session, row.vector_store_id, row.id)


async def forget_file(session: AsyncSession, index: SearchIndex, file_id: str) -> None:
    """A deleted file leaves every store it was in."""
    stores = list(await session.scalars(
        delete(VectorStoreFileRow).where(VectorStoreFileRow.id == file_id)
        .returning(VectorStoreFileRow.vector_store_id)))
    for store_id in stores:  # after the rows, as in delete_vector_store
        await index.remove(session, store_id, file_id)
