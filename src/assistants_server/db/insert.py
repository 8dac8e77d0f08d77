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
from typing import Any, NamedTuple

from sqlalchemy import Insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from assistants_server.db.models import ListedRow


class _Plan(NamedTuple):
    statement: Insert  # INSERT ... RETURNING pk
    columns: tuple[tuple[str, str, Any], ...]  # (attribute, column, default), pk aside


_PLANS: dict[type[ListedRow], _Plan] = {}


async def insert_new(
    session: AsyncSession, rows: Iterable[ListedRow], *, attach: bool = False
) -> None:
    """INSERT each new (transient) row in `session`'s transaction and set its `pk`. Unset
    columns take their column defaults, which are set on the row too. A row stays out of the
    session unless `attach`: rolled back, it is still the transient row it was."""
    connection = await session.connection()
    for row in rows:
        plan = _PLANS.get(type(row)) or _plan(type(row))
        loaded = row.__dict__
        values = {}
        for attribute, column, default in plan.columns:
            if attribute not in loaded:
                setattr(row, attribute, _default(default))
            values[column] = loaded[attribute]
        row.pk = (await connection.execute(plan.statement, values)).scalar_one()
        make_transient_to_detached(row)
        if attach:
            session.add(row)


def _plan(cls: type[ListedRow]) -> _Plan:
    mapper = cls.__mapper__
    table = mapper.local_table
    columns = tuple((prop.key, prop.columns[0].key, prop.columns[0].default)
                    for prop in mapper.column_attrs if not prop.columns[0].primary_key)
    plan = _PLANS[cls] = _Plan(table.insert().returning(table.c.pk), columns)  # type: ignore[attr-defined]
    return plan


def _default(default: Any) -> Any:
    if default is None:
        return None
    if default.is_callable:
        return default.arg(None)  # SQLAlchemy wraps a plain callable to take a context
    return default.arg
