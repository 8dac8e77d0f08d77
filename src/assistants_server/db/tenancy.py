"""Projects own the rows: a session that names a project sees and writes only that project's.

A request's session is given its key's project (`session.info[PROJECT]`, api/deps.py), as is
the session a worker drives a run with (`for_project`). Then every ORM statement on an owned
row class, a SELECT, an UPDATE or a DELETE, in a subquery or a join too, gets
`project_id = <that project>` added by SQLAlchemy's `with_loader_criteria` (the documented
recipe for tenant criteria), and every owned row the session inserts is stamped with it. So an
id of another project is simply not there: "No thread found with id ...". A session without a
project (a worker's sweep, a migration) sees every project; inserting an owned row from one
is a bug and fails.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column, with_loader_criteria

PROJECT = "project_id"
# The project of the keyless default and of ASSISTANTS_API_KEYS, which every row written
# before projects existed was moved into.
DEFAULT_PROJECT = "proj_default"


class Owned:
    """A row that belongs to one project."""

    project_id: Mapped[str] = mapped_column(String(64))


def for_project(
    sessionmaker: async_sessionmaker[AsyncSession], project_id: str
) -> async_sessionmaker[AsyncSession]:
    """Sessions like `sessionmaker`'s that see and write `project_id`'s rows only."""
    return async_sessionmaker(**{**sessionmaker.kw, "info": {PROJECT: project_id}})


@event.listens_for(Session, "do_orm_execute")
def _only_the_project(state: ORMExecuteState) -> None:
    project_id = state.session.info.get(PROJECT)
    if project_id is None or not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return  # the row was loaded under the criteria already
    state.statement = state.statement.options(with_loader_criteria(
        Owned, lambda cls: cls.project_id == project_id, include_aliases=True))


@event.listens_for(Session, "before_flush")
def _stamp(session: Session, _context: Any, _instances: Any) -> None:
    project_id = session.info.get(PROJECT)
    for row in session.new:
        if not isinstance(row, Owned):
            continue
        if project_id is not None:
            row.project_id = project_id
        elif getattr(row, "project_id", None) is None:
            raise RuntimeError(f"{type(row).__name__} written by a session that names no "
                               "project: use tenancy.for_project")
