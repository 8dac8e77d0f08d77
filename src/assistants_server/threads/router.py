"""HTTP endpoints of /v1/threads (thread-and-run lives with runs)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request

from assistants_server.api.deps import SessionDep
from assistants_server.api.pagination import ListPage, ListQueryDep, page_of
from assistants_server.kit.errors import InvalidRequestError
from assistants_server.kit.validation import (
    MAX_METADATA_KEY,
    MAX_METADATA_PAIRS,
    MAX_METADATA_VALUE,
)
from assistants_server.threads import service
from assistants_server.threads.creation import create_thread_with_messages
from assistants_server.threads.schemas import CreateThreadRequest, ModifyThreadRequest, Thread

router = APIRouter(prefix="/v1/threads", tags=["threads"])
_METADATA = re.compile(r"metadata\[(.*)\]", re.DOTALL)
# AzureOpenAI sends `api-version` on every request; it is not a filter.
_LIST_PARAMETERS = frozenset({"limit", "order", "after", "before", "api-version"})
# FastAPI declares no dict query parameter, so `metadata` is documented by hand (deepObject is
# OpenAPI's name for `metadata[KEY]=VALUE`) and read from the raw query below.
_METADATA_PARAMETER = {
    "name": "metadata", "in": "query", "required": False, "style": "deepObject",
    "explode": True,
    "description": "Only threads whose metadata has every KEY with its VALUE "
                   "(`metadata[KEY]=VALUE`, exact match; several are ANDed).",
    "schema": {"type": "object", "maxProperties": MAX_METADATA_PAIRS,
               "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE}},
}


@router.post("")
async def create_thread(session: SessionDep, body: CreateThreadRequest | None = None) -> Thread:
    row = await create_thread_with_messages(session, body or CreateThreadRequest())
    return Thread.from_row(row)


@router.get("", summary="List threads (an extension)",
            openapi_extra={"parameters": [_METADATA_PARAMETER]})
async def list_threads(
    session: SessionDep, query: ListQueryDep, request: Request
) -> ListPage[Thread]:
    """An extension, not part of OpenAI's API: the hosted service could not list threads.
    Newest first by default, paged like every list, and filtered by `metadata[KEY]=VALUE`
    (each pair must match)."""
    metadata = metadata_filter(request.query_params.multi_items())
    rows, has_more = await service.list_threads(session, query, metadata)
    return ListPage[Thread](**page_of([Thread.from_row(row) for row in rows], has_more))


def metadata_filter(params: list[tuple[str, str]]) -> dict[str, str]:
    """`metadata[KEY]=VALUE` query parameters (how the SDKs send a dict in `extra_query`).
    Anything else this list does not take is refused rather than ignored: a misspelt filter
    would otherwise answer with every thread."""
    found: dict[str, str] = {}
    for name, value in params:
        if name in _LIST_PARAMETERS:
            continue
        if name == "metadata":
            raise InvalidRequestError(
                "Invalid 'metadata': filter by metadata with one parameter per key, "
                "metadata[KEY]=VALUE.", param="metadata")
        if (match := _METADATA.fullmatch(name)) is None:
            raise InvalidRequestError(
                f"Unrecognized request argument supplied: {name}. Threads are listed with "
                "limit, order, after, before and metadata[KEY]=VALUE.", param=name)
        key = match.group(1)
        if not key or key in found:
            raise InvalidRequestError(
                f"Invalid '{name}': " + ("the key is empty." if not key else
                                         "given twice; each key takes one value."), param=name)
        if len(key) > MAX_METADATA_KEY or len(value) > MAX_METADATA_VALUE:
            raise InvalidRequestError(
                f"Invalid '{name}': metadata keys are at most {MAX_METADATA_KEY} characters "
                f"and values at most {MAX_METADATA_VALUE}, so no thread can match this.",
                param=name)
        found[key] = value
    if len(found) > MAX_METADATA_PAIRS:
        raise InvalidRequestError(
            f"Invalid 'metadata': at most {MAX_METADATA_PAIRS} filters, as metadata holds at "
            f"most {MAX_METADATA_PAIRS} keys.", param="metadata")
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
