"""New rows written with one Core INSERT each instead of a unit-of-work flush.

A flush of one new object costs about twice its INSERT: the unit of work sorts, diffs and
tracks states around it. The rows a run creates (its thread, messages, run and steps) are
written here on the hot path. Afterwards a row is as if loaded and detached (every attribute
set, its identity known, a run's version counter where the ORM's would start), so a later
session takes it in without a read (`Session.merge(load=False)`); `attach` adds it to this
session at once, for changes still to come in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper, make_transient_to_detached

from assistants_server.db.models import ListedRow

_STATEMENTS: dict[Mapper[Any], Insert] = {}


async def insert_new(
    session: AsyncSession, rows: Iterable[ListedRow], *, attach: bool = False
) -> None:
    """INSERT each new (transient) row in `session`'s transaction and set its `pk`. Unset
    columns take their column defaults, which are set on the row too. A row stays out of the
    session unless `attach`: rolled back, it is still the transient row it was."""
    connection = await session.connection()
    for row in rows:
        mapper = type(row).__mapper__
        values = {}
        for prop in mapper.column_attrs:
            (column,) = prop.columns
            if column.primary_key:
                continue
            if prop.key not in row.__dict__:
                setattr(row, prop.key, _default(column.default))
            values[column.key] = row.__dict__[prop.key]
        statement = _STATEMENTS.get(mapper)
        if statement is None:
            table = mapper.local_table
            statement = _STATEMENTS[mapper] = table.insert().returning(table.c.pk)  # type: ignore[attr-defined]
        row.pk = (await connection.execute(statement, values)).scalar_one()
        make_transient_to_detached(row)
        if attach:
            session.add(row)


def _default(default: Any) -> Any:
    if default is None:
        return None
    if default.is_callable:
        return default.arg(None)  # SQLAlchemy wraps a plain callable to take a context
    return default.arg
