"""The record kinds of a bundle: the table each is, the order they are written and read in
(a record's parents before it), what names a record in any database, and how a row becomes a
JSON record and back.

A record holds its row's columns by their names, `pk` included: an import into a database
where a record's `pk` is free keeps it, so lists sort as they did and a tombstone (a deleted
object's place in its list) still names the right place. The columns of a process's claim
(`lease_owner`, `lease_expires_at`) are left out: they mean nothing to another server, which
takes an active run over as if the process driving it had died; so is the trace a run was
queued in (`trace_context`).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, LargeBinary, Select, Table, func, select, tuple_

from assistants_server.db.access import ApiKeyRow, ProjectRow, RateLimitRow, ServiceAccountRow
from assistants_server.db.models import (
    AssistantRow,
    FileRow,
    MessageRow,
    RunRow,
    RunStepRow,
    ThreadRow,
    TombstoneRow,
    VectorStoreFileBatchRow,
    VectorStoreFileRow,
    VectorStoreRow,
)
from assistants_server.db.tenancy import DEFAULT_PROJECT
from assistants_server.retrieval.rows import ChunkRow
from assistants_server.tokens import message_tokens

LOCAL_COLUMNS = frozenset({"lease_owner", "lease_expires_at", "trace_context"})


class RecordError(ValueError):
    """A record a bundle holds cannot be stored: what is wrong and where."""


@dataclass(frozen=True)
class Kind:
    name: str  # the table's, and the records' file: records/<name>.jsonl
    table: Table
    identity: tuple[str, ...]  # the columns that name a record in every database

    @property
    def columns(self) -> list[Column[Any]]:
        return [c for c in self.table.columns if c.name not in LOCAL_COLUMNS]

    @property
    def keeps_pk(self) -> bool:
        """Whether `pk` is this table's own key (a tombstone's `pk` is its object's)."""
        return "pk" in self.table.c and self.table.c.pk.primary_key

    def key(self, record: Mapping[Any, Any]) -> tuple[Any, ...]:
        return tuple(record[name] for name in self.identity)

    def encode(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The record of a row read from the table."""
        record = {}
        for column in self.columns:
            value = row[column.name]
            if isinstance(column.type, LargeBinary) and value is not None:
                value = base64.b64encode(value).decode("ascii")
            record[column.name] = value
        return record

    def decode(self, record: Mapping[str, Any], where: str) -> dict[str, Any]:
        """The row values of a record read from a bundle, with what it leaves out filled as
        the server fills it; RecordError when a required column is missing or one is not this
        table's."""
        unknown = set(record) - {c.name for c in self.columns}
        if unknown:
            raise RecordError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} for a "
                              f"{self.name} record; was the bundle written by a newer server?")
        values: dict[str, Any] = {}
        for column in self.columns:
            if column.name in record:
                value = record[column.name]
                if isinstance(column.type, LargeBinary) and value is not None:
                    value = base64.b64decode(value)
                values[column.name] = value
            elif column.name != "pk":
                values[column.name] = _default(column, where, self.name)
        if self.table is MessageRow.__table__ and values.get("token_count") is None:
            values["token_count"] = message_tokens(values["role"], values["content"] or [])
        if self.table is RunRow.__table__:
            # A run that was being driven is claimed by a process long gone: the sweeper takes
            # it over as it does after a crash (runs/lifecycle.py `take_over`).
            driven = values["status"] in ("in_progress", "cancelling")
            values.update(lease_owner="imported" if driven else None,
                          lease_expires_at=0.0 if driven else None)
        return values


def _default(column: Column[Any], where: str, kind: str) -> Any:
    if column.default is not None and column.default.is_scalar:
        return column.default.arg  # type: ignore[attr-defined]
    if column.default is not None and column.default.is_callable:
        return column.default.arg(None)  # type: ignore[attr-defined]
    if column.name == "project_id":
        return DEFAULT_PROJECT
    if column.nullable or column.name == "token_count":
        return None
    raise RecordError(f"{where}: a {kind} record needs '{column.name}'")


def _kind(name: str, row: Any, *identity: str) -> Kind:
    table = row.__table__
    assert table.name == name
    return Kind(name, table, identity or ("id",))


# Parents before children: a message's thread, a step's run, a store's files after the store.
KINDS: tuple[Kind, ...] = (
    _kind("projects", ProjectRow),
    _kind("service_accounts", ServiceAccountRow),
    _kind("api_keys", ApiKeyRow),
    _kind("rate_limits", RateLimitRow, "project_id", "model"),
    _kind("files", FileRow),
    _kind("assistants", AssistantRow),
    _kind("threads", ThreadRow),
    _kind("messages", MessageRow),
    _kind("runs", RunRow),
    _kind("run_steps", RunStepRow),
    _kind("vector_stores", VectorStoreRow),
    _kind("vector_store_file_batches", VectorStoreFileBatchRow),
    _kind("vector_store_files", VectorStoreFileRow, "vector_store_id", "id"),
    _kind("search_chunks", ChunkRow, "vector_store_id", "file_id", "chunk_index"),
    _kind("tombstones", TombstoneRow),
)
BY_NAME = {kind.name: kind for kind in KINDS}


def selection(kind: Kind, project: str | None, since: int | None) -> Select[Any]:
    """The rows of `kind` an export takes: one project's, or all; those changed since a time,
    or all. In the order they were written."""
    c = kind.table.c
    statement = select(*kind.columns)
    if project is not None:
        if kind.name == "projects":
            statement = statement.where(c.id == project)
        elif kind.name == "search_chunks":
            stores = VectorStoreRow.__table__.c
            statement = statement.where(c.vector_store_id.in_(
                select(stores.id).where(stores.project_id == project)))
        else:
            statement = statement.where(c.project_id == project)
    if since is not None:
        if "updated_at" in c:
            statement = statement.where(func.coalesce(c.updated_at, c.created_at) >= since)
        elif kind.name == "tombstones":
            statement = statement.where(c.deleted_at >= since)
        elif kind.name == "search_chunks":  # those of the files indexed since
            files = VectorStoreFileRow.__table__.c
            statement = statement.where(tuple_(c.vector_store_id, c.file_id).in_(
                select(files.vector_store_id, files.id).where(
                    func.coalesce(files.updated_at, files.created_at) >= since)))
    order = (c.deleted_at, c.id) if kind.name == "tombstones" else (c.pk,)
    return statement.order_by(*order)
