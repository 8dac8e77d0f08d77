"""code_interpreter's files: the run's files placed in the thread's sandbox session before its
code runs, and what the code made (figures, written files) saved as files of purpose
`assistants_output`."""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistants_server.db.models import FileRow, RunRow
from assistants_server.files.blobs import BlobStore
from assistants_server.files.service import create_file
from assistants_server.sandbox import WORK_DIR, ExecutionResult, Sandbox, SandboxError
from assistants_server.toolbox.resources import resource_ids

log = logging.getLogger(__name__)
NAME = "code_interpreter"
MAX_SAVED_FILES = 20
MAX_SAVED_BYTES = 100_000_000  # of files one execution saves
NOT_SAVED = ""  # in `paths`: a file written, but past MAX_SAVED_BYTES


async def place_files(
    sessionmaker: async_sessionmaker[AsyncSession], sandbox: Sandbox, blobs: BlobStore,
    run: RunRow,
) -> None:
    """Put the run's and the thread's files in the session's /mnt/data. Every time: a session
    closed for idleness (or to make room) took its directory with it."""
    async with sessionmaker() as session:
        rows = await _files(session, run)
    for file_id, filename in rows:
        try:
            data = b"".join([part async for part in await blobs.open(file_id)])
            await sandbox.put_file(run.thread_id, filename, data)
        except (OSError, SandboxError) as exc:  # one unusable file must not stop the code
            log.warning("file %s not placed in the session of %s: %s", file_id,
                        run.thread_id, exc)


async def _files(session: AsyncSession, run: RunRow) -> list[tuple[str, str]]:
    """(id, filename) of the files the run's code may use."""
    ids = await resource_ids(session, run, NAME, "file_ids")
    if not ids:
        return []
    return [(file_id, filename) for file_id, filename in await session.execute(
        select(FileRow.id, FileRow.filename).where(FileRow.id.in_(ids)))]


async def file_names(session: AsyncSession, run: RunRow) -> list[str]:
    return [filename for _, filename in await _files(session, run)]


async def save_outputs(
    sessionmaker: async_sessionmaker[AsyncSession], sandbox: Sandbox, blobs: BlobStore,
    thread_id: str, result: ExecutionResult,
) -> tuple[list[str], dict[str, str]]:
    """The execution's figures and written files as files of purpose `assistants_output`:
    image file ids, and file ids by their `sandbox:` link. Each is read first and recorded in
    a transaction of its own, so no write lock waits on file I/O."""
    images = [await _save(sessionmaker, blobs, png, f"figure-{i + 1}.png")
              for i, png in enumerate(result.images)]
    paths: dict[str, str] = {}
    saved = 0
    for path in result.files[:MAX_SAVED_FILES]:
        try:
            data = await sandbox.read_file(thread_id, path)
        except (SandboxError, OSError):
            continue  # gone again, or not a regular file
        link = f"sandbox:{WORK_DIR}/{path.lstrip('/')}"
        if saved + len(data) > MAX_SAVED_BYTES:  # one cell cannot fill the file store
            paths[link] = NOT_SAVED
            continue
        saved += len(data)
        paths[link] = await _save(sessionmaker, blobs, data, path.rsplit("/", 1)[-1])
    return images, paths


async def _save(
    sessionmaker: async_sessionmaker[AsyncSession], blobs: BlobStore, data: bytes, name: str,
) -> str:
    async with sessionmaker() as session:
        row = await create_file(session, blobs, io.BytesIO(data), name, "assistants_output",
                                None)
        await session.commit()
        return row.id


def outputs_of(result: ExecutionResult, images: list[str]) -> list[dict[str, Any]]:
    logs = result.logs + (("\n" if result.logs else "") + result.error if result.error else "")
    outputs: list[dict[str, Any]] = [{"type": "logs", "logs": logs}] if logs else []
    outputs += [{"type": "image", "image": {"file_id": file_id}} for file_id in images]
    return outputs


def model_output(result: ExecutionResult, images: list[str], paths: Mapping[str, str]) -> str:
    """What the model is told of the execution."""
    parts = [result.logs] if result.logs else []
    if result.error:
        parts.append(f"Error: {result.error}")
    if images:
        parts.append(f"{len(images)} figure(s) were shown to the user.")
    kept = [link for link, file_id in paths.items() if file_id != NOT_SAVED]
    if kept:
        parts.append("Files saved for the user (link them as written): " + ", ".join(kept))
    if len(kept) < len(paths):
        parts.append(f"Not saved (an execution saves at most {MAX_SAVED_BYTES // 10**6} MB of "
                     "files): " + ", ".join(link for link in paths if link not in kept))
    return "\n".join(parts) or "(the code ran and printed nothing)"
