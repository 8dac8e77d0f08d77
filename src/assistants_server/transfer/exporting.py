"""`assistants-server export`: the database's records and the files' bytes, into a bundle.

Everything is read in one transaction, so the bundle is one moment's state even while the
server keeps serving: on SQLite a read transaction (WAL lets the writer go on), on PostgreSQL
a REPEATABLE READ one. Rows are streamed from the database a batch at a time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import assistants_server
from assistants_server.config import Settings
from assistants_server.db.engine import create_engine
from assistants_server.files.blobs import blob_store
from assistants_server.transfer.archive import BATCH, BundleWriter
from assistants_server.transfer.kinds import BY_NAME, KINDS, Kind, selection

FORMAT = "assistants-server-bundle"
VERSION = 1
# Progress: how many records and how many bytes were just done.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportOptions:
    project: str | None = None  # one project's objects (and its keys), or every project's
    since: int | None = None  # only what changed at or after this time (Unix seconds)
    keys: bool = True  # the key records (their secrets' hashes, never the secrets)
    chunks: bool = True  # vector stores' chunks and embeddings; without: re-indexed on import

    def kinds(self) -> list[Kind]:
        left_out = {"api_keys"} if not self.keys else set()
        if not self.chunks:
            left_out.add("search_chunks")
        return [kind for kind in KINDS if kind.name not in left_out]


@dataclass
class ExportSummary:
    counts: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    missing_blobs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    manifest: dict[str, Any] = field(default_factory=dict)


async def export_bundle(settings: Settings, path: Path, options: ExportOptions,
                        progress: Callable[[int], Progress]) -> ExportSummary:
    """Write the bundle; `progress(total records)` gives the callback that is told of each
    batch written. A failed export leaves nothing behind."""
    started = time.monotonic()
    writer = BundleWriter(path)
    engine = create_engine(settings)
    summary = ExportSummary()
    try:
        await _read_into(engine, writer, options, progress, summary)
        summary.missing_blobs = await writer.finish(summary.manifest,
                                                    blob_store(settings))
    except BaseException:
        writer.abandon()
        raise
    finally:
        await engine.dispose()
    summary.seconds = time.monotonic() - started
    return summary


async def _read_into(engine: AsyncEngine, writer: BundleWriter, options: ExportOptions,
                     progress: Callable[[int], Progress], summary: ExportSummary) -> None:
    """Every kind's records into the writer, read in one transaction: one moment's state."""
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execution_options(isolation_level="REPEATABLE READ")
        else:  # the driver opens no transaction for reads: open it, for one snapshot
            await connection.exec_driver_sql("BEGIN")
        summary.manifest = await _manifest(connection, options)
        summary.bytes = summary.manifest["bytes"]
        advance = progress(sum(summary.manifest["counts"].values()))
        for kind in options.kinds():
            summary.counts[kind.name] = await _write_kind(
                connection, writer, kind, options, advance)
        await connection.rollback()


async def _manifest(connection: AsyncConnection, options: ExportOptions) -> dict[str, Any]:
    counts = {}
    for kind in options.kinds():
        scope = selection(kind, options.project, options.since).order_by(None).subquery()
        counts[kind.name] = await connection.scalar(select(func.count()).select_from(scope))
    files = selection(BY_NAME["files"], options.project, options.since).order_by(None).subquery()
    revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    return {
        "format": FORMAT, "version": VERSION, "server_version": assistants_server.__version__,
        "schema_revision": revision, "exported_at": int(time.time()),
        "project": options.project, "since": options.since, "keys": options.keys,
        "chunks": options.chunks, "counts": counts,
        # PostgreSQL sums a bigint into a numeric: a Decimal.
        "bytes": int(await connection.scalar(select(func.coalesce(func.sum(files.c.bytes), 0)))
                     or 0),
    }


async def _write_kind(connection: AsyncConnection, writer: BundleWriter, kind: Kind,
                      options: ExportOptions, advance: Progress) -> int:
    statement = selection(kind, options.project, options.since)
    written = 0
    with writer.records(kind.name) as out:
        result = await connection.stream(statement.execution_options(yield_per=BATCH))
        async for rows in result.mappings().partitions():
            size = 0
            for row in rows:
                record = kind.encode(row)
                if kind.name == "vector_store_files" and not options.chunks:
                    _to_index_again(record)
                if kind.name == "files":
                    size += record["bytes"]
                out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            written += len(rows)
            advance(len(rows), size)
    return written


def _to_index_again(record: dict[str, Any]) -> None:
    """A store's file exported without its chunks is indexed again by the importing server."""
    if record["status"] == "completed":
        record.update(status="in_progress", usage_bytes=0, last_error=None)
