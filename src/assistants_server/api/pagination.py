"""Cursor pages: `limit`/`order`/`after`/`before` in, `{object: list, data, first_id, last_id,
has_more}` out.

Rows are ordered by `(created_at, pk)` and a cursor is turned into that pair with one indexed
lookup, so every page is at most two index range scans whose cost does not grow with the list.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.db.models import ListedRow, OwnedRow, TombstoneRow
from assistants_server.kit.errors import InvalidRequestError

RowT = TypeVar("RowT", bound=ListedRow)
ItemT = TypeVar("ItemT")


class ListQuery(BaseModel):
    limit: int = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


def list_query(
    max_limit: int = 100, default_limit: int = 20
) -> Callable[..., Awaitable[ListQuery]]:
    """The dependency reading `limit`/`order`/`after`/`before`; files page by up to 10,000."""

    # Bounds as defaults, not annotations: the module's annotations are strings that FastAPI
    # resolves from its globals, where `max_limit` does not live.
    async def read(  # async: FastAPI would run a plain function on its thread pool
        limit: int = Query(default_limit, ge=1, le=max_limit),
        order: Literal["asc", "desc"] = Query("desc"),
        after: str | None = Query(None),
        before: str | None = Query(None),
    ) -> ListQuery:
        return ListQuery(limit=limit, order=order, after=after or None, before=before or None)

    return read


ListQueryDep = Annotated[ListQuery, Depends(list_query())]


class ListPage(BaseModel, Generic[ItemT]):
    object: Literal["list"] = "list"
    data: list[ItemT]
    first_id: str | None
    last_id: str | None
    has_more: bool


def page_of(items: Sequence[Any], has_more: bool) -> dict[str, Any]:
    """The list envelope; items are wire models or dicts that carry an `id`."""
    ids = [item["id"] if isinstance(item, dict) else item.id for item in items]
    return {
        "object": "list",
        "data": list(items),
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
        "has_more": has_more,
    }


async def fetch_page(
    session: AsyncSession,
    row_type: type[RowT],
    query: ListQuery,
    *scope: ColumnElement[bool],
    visible: Sequence[ColumnElement[bool]] = (),
) -> tuple[list[RowT], bool]:
    """One page of `row_type` rows within `scope` (e.g. one thread), and whether more follow.
    `visible` filters the rows listed but not the cursors: a cursor naming a row that has
    since left the list (an expired file) still marks a position."""
    # `before` alone walks towards the start of the list: fetch in reverse, then flip back.
    reverse = query.before is not None and query.after is None
    walk_desc = (query.order == "desc") != reverse
    start_id, stop_id = (query.before, None) if reverse else (query.after, query.before)
    conditions = [*scope, *visible]
    if stop_id is not None:
        stop = await _cursor(session, row_type, "before", stop_id, scope)
        key = tuple_(row_type.created_at, row_type.pk)
        conditions.append(key > tuple_(*stop) if walk_desc else key < tuple_(*stop))
    wanted = query.limit + 1
    if start_id is None:
        rows = await _walk(session, row_type, conditions, walk_desc, wanted)
    else:
        param = "before" if reverse else "after"
        created_at, pk = await _cursor(session, row_type, param, start_id, scope)
        # Two exact index seeks instead of one row-value range: SQLite seeks a row value
        # only on its first column and would scan every row sharing the cursor's second.
        same_second = [row_type.created_at == created_at,
                       row_type.pk < pk if walk_desc else row_type.pk > pk]
        rows = await _walk(session, row_type, conditions + same_second, walk_desc, wanted)
        if len(rows) < wanted:
            earlier = row_type.created_at < created_at if walk_desc else (
                row_type.created_at > created_at)
            rows += await _walk(session, row_type, [*conditions, earlier], walk_desc,
                                wanted - len(rows))
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if reverse:
        rows.reverse()
    return rows, has_more


async def _walk(
    session: AsyncSession,
    row_type: type[RowT],
    conditions: Sequence[ColumnElement[bool]],
    descending: bool,
    limit: int,
) -> list[RowT]:
    columns = (row_type.created_at, row_type.pk)
    stmt = select(row_type).where(*conditions).order_by(
        *(c.desc() if descending else c.asc() for c in columns)).limit(limit)
    return list((await session.scalars(stmt)).all())


async def _cursor(
    session: AsyncSession,
    row_type: type[ListedRow],
    param: str,
    object_id: str,
    scope: Sequence[ColumnElement[bool]],
) -> tuple[int, int]:
    found = (
        await session.execute(
            select(row_type.created_at, row_type.pk).where(row_type.id == object_id, *scope)
        )
    ).first()
    if found is None:
        found = (await session.execute(select(TombstoneRow.created_at, TombstoneRow.pk).where(
            TombstoneRow.id == object_id))).first()
    if found is None:
        raise InvalidRequestError(
            f"Invalid '{param}': no object with id '{object_id}' in this list. Use an id "
            "returned by a previous page.",
            param=param,
        )
    return int(found[0]), int(found[1])


async def delete_listed(session: AsyncSession, row: OwnedRow) -> None:
    """Delete a listed object, leaving a tombstone so cursors naming it keep working."""
    session.add(TombstoneRow(id=row.id, created_at=row.created_at, pk=row.pk,
                             deleted_at=int(time.time()), project_id=row.project_id))
    await session.delete(row)
    await session.flush()
