"""Cursor pages: `limit`/`order`/`after`/`before` in, `{object: list, data, first_id, last_id,
has_more}` out.

Rows are ordered by `(created_at, pk)` and a cursor is turned into that pair with one indexed
lookup, so every page is an index range scan whose cost does not grow with the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.api.errors import InvalidRequestError
from assistants_server.db.models import ListedRow

RowT = TypeVar("RowT", bound=ListedRow)
ItemT = TypeVar("ItemT")


class ListQuery(BaseModel):
    limit: int = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


def _list_query(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    after: Annotated[str | None, Query()] = None,
    before: Annotated[str | None, Query()] = None,
) -> ListQuery:
    return ListQuery(limit=limit, order=order, after=after or None, before=before or None)


ListQueryDep = Annotated[ListQuery, Depends(_list_query)]


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
) -> tuple[list[RowT], bool]:
    """One page of `row_type` rows within `scope` (e.g. one thread), and whether more follow."""
    key = tuple_(row_type.created_at, row_type.pk)
    descending = query.order == "desc"
    # `before` walks towards the start of the list: fetch in reverse, then flip the page back.
    reverse = query.before is not None and query.after is None
    stmt = select(row_type).where(*scope)
    if query.after is not None:
        anchor = await _cursor(session, row_type, "after", query.after, scope)
        stmt = stmt.where(key < anchor if descending else key > anchor)
    if query.before is not None:
        anchor = await _cursor(session, row_type, "before", query.before, scope)
        stmt = stmt.where(key > anchor if descending else key < anchor)
    ascending = descending == reverse
    columns = (row_type.created_at, row_type.pk)
    stmt = stmt.order_by(*(c.asc() if ascending else c.desc() for c in columns))
    rows = list((await session.scalars(stmt.limit(query.limit + 1))).all())
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if reverse:
        rows.reverse()
    return rows, has_more


async def _cursor(
    session: AsyncSession,
    row_type: type[ListedRow],
    param: str,
    object_id: str,
    scope: Sequence[ColumnElement[bool]],
) -> Any:
    found = (
        await session.execute(
            select(row_type.created_at, row_type.pk).where(row_type.id == object_id, *scope)
        )
    ).first()
    if found is None:
        raise InvalidRequestError(
            f"Invalid '{param}': no object with id '{object_id}' in this list. Use an id "
            "returned by a previous page.",
            param=param,
        )
    return tuple_(found[0], found[1])
