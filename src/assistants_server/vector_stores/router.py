"""HTTP endpoints of `/v1/vector_stores`: stores, their files, file batches and search.

Writes commit before the ingestion worker is told, so it always finds what it is told of.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from assistants_server.api.deps import SessionDep
from assistants_server.api.pagination import ListPage, ListQuery, ListQueryDep, list_query, page_of
from assistants_server.kit.errors import InvalidRequestError
from assistants_server.kit.objects import DeletedObject
from assistants_server.retrieval.index import SearchIndex
from assistants_server.retrieval.rows import ChunkRow
from assistants_server.vector_stores import batches, service
from assistants_server.vector_stores.filters import check_filter
from assistants_server.vector_stores.schemas import (
    CreateFileBatchRequest,
    CreateVectorStoreFileRequest,
    CreateVectorStoreRequest,
    DeletedVectorStoreFile,
    FileBatch,
    FileContentPage,
    ModifyVectorStoreRequest,
    SearchRequest,
    SearchResultsPage,
    UpdateVectorStoreFileRequest,
    VectorStore,
    VectorStoreFile,
)
from assistants_server.vector_stores.search import search_stores

router = APIRouter(prefix="/v1/vector_stores", tags=["vector_stores"])
FileListQuery = Annotated[ListQuery, Depends(list_query())]


def _index(request: Request) -> SearchIndex:
    index: SearchIndex = request.app.state.search_index
    return index


@router.post("")
async def create_vector_store(
    body: CreateVectorStoreRequest, session: SessionDep, request: Request
) -> VectorStore:
    store = await service.create_vector_store(session, body)
    return await service.describe_vector_store(session, store)


@router.get("")
async def list_vector_stores(session: SessionDep, query: ListQueryDep) -> ListPage[VectorStore]:
    rows, has_more = await service.list_vector_stores(session, query)
    return ListPage[VectorStore](**page_of(
        await service.describe_vector_stores(session, rows), has_more))


@router.get("/{vector_store_id}")
async def retrieve_vector_store(vector_store_id: str, session: SessionDep) -> VectorStore:
    store = await service.get_vector_store(session, vector_store_id)
    return await service.describe_vector_store(session, store)


@router.post("/{vector_store_id}")
async def modify_vector_store(
    vector_store_id: str, body: ModifyVectorStoreRequest, session: SessionDep
) -> VectorStore:
    store = await service.modify_vector_store(session, vector_store_id, body)
    return await service.describe_vector_store(session, store)


@router.delete("/{vector_store_id}")
async def delete_vector_store(
    vector_store_id: str, session: SessionDep, request: Request
) -> DeletedObject:
    await service.delete_vector_store(session, _index(request), vector_store_id)
    return DeletedObject(id=vector_store_id, object="vector_store.deleted")


@router.post("/{vector_store_id}/search")
async def search_vector_store(
    vector_store_id: str, body: SearchRequest, session: SessionDep, request: Request
) -> SearchResultsPage:
    store = await service.get_vector_store(session, vector_store_id)
    if service.is_expired(store, int(time.time())):
        raise InvalidRequestError(
            f"Vector store {store.id} has expired (it was idle longer than its expires_after "
            "allows); create a new one with the same files.", param="vector_store_id")
    if body.filters is not None:
        check_filter(body.filters)
    queries = [body.query] if isinstance(body.query, str) else body.query
    ranking = body.ranking_options
    results = await search_stores(
        session, _index(request), [store], queries, max_results=body.max_num_results,
        score_threshold=ranking.score_threshold if ranking else 0.0, filters=body.filters)
    return SearchResultsPage(search_query=queries, data=results)


# Files of a store -------------------------------------------------------------------------


@router.post("/{vector_store_id}/files")
async def create_vector_store_file(
    vector_store_id: str, body: CreateVectorStoreFileRequest, session: SessionDep,
    request: Request,
) -> VectorStoreFile:
    store = await service.get_vector_store(session, vector_store_id)
    row = await service.attach_file(session, store, body.file_id,
                                    service.chunking(body.chunking_strategy),
                                    body.attributes or {})
    return service.show_file(row)


@router.get("/{vector_store_id}/files")
async def list_vector_store_files(
    vector_store_id: str, session: SessionDep, query: FileListQuery,
    filter: Annotated[str | None, Query()] = None,  # noqa: A002 (the API's parameter name)
) -> ListPage[VectorStoreFile]:
    rows, has_more = await service.list_store_files(session, vector_store_id, query, filter)
    return ListPage[VectorStoreFile](**page_of([service.show_file(r) for r in rows], has_more))


@router.get("/{vector_store_id}/files/{file_id}")
async def retrieve_vector_store_file(
    vector_store_id: str, file_id: str, session: SessionDep
) -> VectorStoreFile:
    return service.show_file(await service.get_store_file(session, vector_store_id, file_id))


@router.post("/{vector_store_id}/files/{file_id}")
async def update_vector_store_file(
    vector_store_id: str, file_id: str, body: UpdateVectorStoreFileRequest, session: SessionDep
) -> VectorStoreFile:
    row = await service.get_store_file(session, vector_store_id, file_id)
    row.attributes = body.attributes or {}
    await session.flush()
    return service.show_file(row)


@router.delete("/{vector_store_id}/files/{file_id}")
async def delete_vector_store_file(
    vector_store_id: str, file_id: str, session: SessionDep, request: Request
) -> DeletedVectorStoreFile:
    await service.detach_file(session, _index(request), vector_store_id, file_id)
    return DeletedVectorStoreFile(id=file_id)


@router.get("/{vector_store_id}/files/{file_id}/content")
async def vector_store_file_content(
    vector_store_id: str, file_id: str, session: SessionDep
) -> FileContentPage:
    """The file's text as it was indexed: its chunks, in order."""
    row = await service.get_store_file(session, vector_store_id, file_id)
    texts = await session.scalars(
        select(ChunkRow.text).where(ChunkRow.vector_store_id == row.vector_store_id,
                                    ChunkRow.file_id == row.id).order_by(ChunkRow.chunk_index))
    return FileContentPage(data=[{"type": "text", "text": text} for text in texts])


# File batches -----------------------------------------------------------------------------


@router.post("/{vector_store_id}/file_batches")
async def create_vector_store_file_batch(
    vector_store_id: str, body: CreateFileBatchRequest, session: SessionDep, request: Request
) -> FileBatch:
    batch = await batches.create_file_batch(session, vector_store_id,
                                             batches.batch_entries(body))
    return await batches.describe_file_batch(session, batch)


@router.get("/{vector_store_id}/file_batches/{batch_id}")
async def retrieve_vector_store_file_batch(
    vector_store_id: str, batch_id: str, session: SessionDep
) -> FileBatch:
    batch = await batches.get_file_batch(session, vector_store_id, batch_id)
    return await batches.describe_file_batch(session, batch)


@router.post("/{vector_store_id}/file_batches/{batch_id}/cancel")
async def cancel_vector_store_file_batch(
    vector_store_id: str, batch_id: str, session: SessionDep
) -> FileBatch:
    batch = await batches.cancel_file_batch(session, vector_store_id, batch_id)
    return await batches.describe_file_batch(session, batch)


@router.get("/{vector_store_id}/file_batches/{batch_id}/files")
async def list_files_in_vector_store_batch(
    vector_store_id: str, batch_id: str, session: SessionDep, query: FileListQuery,
    filter: Annotated[str | None, Query()] = None,  # noqa: A002
) -> ListPage[VectorStoreFile]:
    await batches.get_file_batch(session, vector_store_id, batch_id)
    rows, has_more = await service.list_store_files(session, vector_store_id, query, filter,
                                                    batch_id=batch_id)
    return ListPage[VectorStoreFile](**page_of([service.show_file(r) for r in rows], has_more))

