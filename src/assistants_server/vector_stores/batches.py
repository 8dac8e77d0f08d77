"""File batches of a vector store: files attached together, cancelled together, and counted
from the files naming the batch (so a batch's counts never drift from its files')."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.db.models import VectorStoreFileBatchRow, VectorStoreFileRow
from assistants_server.kit.errors import InvalidRequestError, NotFoundError
from assistants_server.kit.ids import check_id, new_id
from assistants_server.vector_stores.schemas import CreateFileBatchRequest, FileBatch
from assistants_server.vector_stores.service import (
    attach_file,
    chunking,
    file_counts,
    get_vector_store,
)

BatchEntry = tuple[str, dict[str, Any] | None, dict[str, Any] | None]


def batch_entries(body: CreateFileBatchRequest) -> list[BatchEntry]:
    """(file id, its chunking strategy or None for the default, its attributes) per file:
    `files` carries per-file settings, `file_ids` shares the batch's."""
    default = chunking(body.chunking_strategy) if body.chunking_strategy else None
    if body.files is not None and body.file_ids is not None:
        raise InvalidRequestError("Send either 'file_ids' or 'files', not both.",
                                  param="files")
    if body.files is not None:
        return [(f.file_id, chunking(f.chunking_strategy, f"files[{i}].chunking_strategy")
                 if f.chunking_strategy else default, f.attributes or body.attributes)
                for i, f in enumerate(body.files)]
    if body.file_ids is None:
        raise InvalidRequestError("Missing required parameter: 'file_ids' (or 'files').",
                                  param="file_ids", code="missing_required_parameter")
    return [(file_id, default, body.attributes) for file_id in body.file_ids]


async def create_file_batch(
    session: AsyncSession, store_id: str, files: Sequence[BatchEntry]
) -> VectorStoreFileBatchRow:
    store = await get_vector_store(session, store_id)
    batch = VectorStoreFileBatchRow(id=new_id("vsfb_"), created_at=int(time.time()),
                                    metadata_={}, vector_store_id=store.id)
    session.add(batch)
    for i, (file_id, strategy, attributes) in enumerate(files):
        await attach_file(session, store, file_id, strategy or chunking(None), attributes or {},
                          batch_id=batch.id, param=f"file_ids[{i}]")
    await session.flush()
    return batch


async def get_file_batch(
    session: AsyncSession, store_id: str, batch_id: str
) -> VectorStoreFileBatchRow:
    check_id(batch_id, "vsfb_", "batch_id")
    store = await get_vector_store(session, store_id)
    batch = await session.scalar(select(VectorStoreFileBatchRow).where(
        VectorStoreFileBatchRow.id == batch_id,
        VectorStoreFileBatchRow.vector_store_id == store.id))
    if batch is None:
        raise NotFoundError(f"No file batch found with id '{batch_id}' in vector store "
                            f"'{store_id}'.")
    return batch


async def cancel_file_batch(
    session: AsyncSession, store_id: str, batch_id: str
) -> VectorStoreFileBatchRow:
    """Files not yet indexed are cancelled; those already done stay in the store."""
    batch = await get_file_batch(session, store_id, batch_id)
    if batch.cancelled_at is None:
        batch.cancelled_at = int(time.time())
        await session.execute(
            update(VectorStoreFileRow)
            .where(VectorStoreFileRow.batch_id == batch.id,
                   VectorStoreFileRow.status == "in_progress")
            .values(status="cancelled", lease_expires_at=None))
        await session.flush()
    return batch


async def describe_file_batch(session: AsyncSession, batch: VectorStoreFileBatchRow) -> FileBatch:
    counts, _ = (await file_counts(session, VectorStoreFileRow.batch_id, [batch.id]))[batch.id]
    status = "in_progress" if counts.in_progress else (
        "cancelled" if batch.cancelled_at is not None else "completed")
    return FileBatch(id=batch.id, created_at=batch.created_at,
                     vector_store_id=batch.vector_store_id, status=status, file_counts=counts)
