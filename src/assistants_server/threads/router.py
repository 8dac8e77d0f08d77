"""HTTP endpoints of /v1/threads (thread-and-run lives with runs)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request

from assistants_server.api.deps import SessionDep
from assistants_server.api.pagination import ListPage, ListQueryDep, page_of
from assistants_server.kit.errors import InvalidRequestError
from assistants_server.threads import service
from assistants_server.threads.creation import create_thread_with_messages
from assistants_server.threads.schemas import CreateThreadRequest, ModifyThreadRequest, Thread

router = APIRouter(prefix="/v1/threads", tags=["threads"])
_METADATA = re.compile(r"metadata\[(.+)\]")


@router.post("")
async def create_thread(session: SessionDep, body: CreateThreadRequest | None = None) -> Thread:
    row = await create_thread_with_messages(session, body or CreateThreadRequest())
    return Thread.from_row(row)


@router.get("")
async def list_threads(
    session: SessionDep, query: ListQueryDep, request: Request
) -> ListPage[Thread]:
    """An extension: the hosted service could not list threads. Newest first by default,
    paged like every list, and filtered by `metadata[KEY]=VALUE` (each pair must match)."""
    metadata = metadata_filter(request.query_params.multi_items())
    rows, has_more = await service.list_threads(session, query, metadata)
    return ListPage[Thread](**page_of([Thread.from_row(row) for row in rows], has_more))


def metadata_filter(params: list[tuple[str, str]]) -> dict[str, str]:
    """`metadata[KEY]=VALUE` query parameters (how the SDKs send a dict in `extra_query`)."""
    found: dict[str, str] = {}
    for name, value in params:
        if name == "metadata":
            raise InvalidRequestError(
                "Filter by metadata with one parameter per key: metadata[KEY]=VALUE.",
                param="metadata")
        if (match := _METADATA.fullmatch(name)) is None:
            continue
        key = match.group(1)
        if len(key) > 64 or len(value) > 512:
            raise InvalidRequestError(
                f"Invalid '{name}': metadata keys are at most 64 characters and values at "
                "most 512, so no thread can match this.", param=name)
        found[key] = value
    if len(found) > 16:
        raise InvalidRequestError("At most 16 metadata filters, as metadata holds at most 16 "
                                  "keys.", param="metadata")
    return found


@router.get("/{thread_id}")
async def retrieve_thread(thread_id: str, session: SessionDep) -> Thread:
    return Thread.from_row(await service.get_thread(session, thread_id))


@router.post("/{thread_id}")
async def modify_thread(
    thread_id: str, session: SessionDep, body: ModifyThreadRequest | None = None
) -> Thread:
    body = body or ModifyThreadRequest()
    return Thread.from_row(await service.modify_thread(session, thread_id, body))

# DELETE /v1/threads/{thread_id} is served by the runs' router: it cancels the active run.
