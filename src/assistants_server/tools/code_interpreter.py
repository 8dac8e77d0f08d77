"""The code_interpreter tool in runs: what the model is offered, its code relayed as it is
written, the execution in the thread's sandbox session, and what comes back.

The thread's files (the assistant's and the thread's `code_interpreter.file_ids`, message
attachments included) are placed in the session's /mnt/data before the code runs. Figures
become `image` outputs saved as files (purpose `assistants_output`) and `image_file` parts of
the next message; files the code writes are saved the same way, and the answer's
`sandbox:/mnt/data/...` links to them become `file_path` annotations.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistants_server.db.models import FileRow, RunRow
from assistants_server.files.blobs import BlobStore
from assistants_server.files.service import create_file
from assistants_server.sandbox import WORK_DIR, ExecutionResult, Sandbox, SandboxError
from assistants_server.tools.resources import resource_ids

log = logging.getLogger(__name__)
NAME = "code_interpreter"
# A link ends at whitespace, a bracket or quote, or a citation marker; trailing punctuation
# belongs to the sentence.
LINK = re.compile(r"sandbox:/mnt/data/[^\s)\]\"'<>`【]*[^\s)\]\"'<>`【.,;:!?]")
MAX_SAVED_FILES = 20


def definition(files: list[str]) -> dict[str, Any]:
    listing = ("Files available: " + ", ".join(f"{WORK_DIR}/{name}" for name in files) + "."
               if files else "")
    return {"type": "function", "function": {
        "name": NAME,
        "description": (
            "Run Python code in a stateful session (variables persist between calls) with "
            f"working directory {WORK_DIR} and no internet access. Printed output and the "
            "value of the last expression are returned; matplotlib figures are shown to the "
            f"user. Save files for the user under {WORK_DIR} and link them in your answer as "
            f"sandbox:{WORK_DIR}/<name>. {listing}").strip(),
        "parameters": {"type": "object", "properties": {"code": {
            "type": "string", "description": "The Python code to run."}},
            "required": ["code"]},
    }}


def code_of(arguments: str) -> str:
    """The code of a call: `{"code": ...}` as asked, or the raw text a model sent instead."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return arguments
    if isinstance(parsed, dict):
        return str(parsed.get("code", parsed.get("input", "")))
    return arguments


class CodeInput:
    """Decodes the `code` string out of a call's arguments as their fragments arrive, so the
    code can be streamed as `code_interpreter.input` deltas while the model writes it."""

    _OPENING = re.compile(r'"code"\s*:\s*"')

    def __init__(self) -> None:
        self._raw = ""
        self._start: int | None = None  # where the string's content begins in _raw
        self._done = 0  # raw characters of the content already decoded
        self._closed = False

    def feed(self, fragment: str) -> str:
        self._raw += fragment
        if self._closed:
            return ""
        if self._start is None:
            opening = self._OPENING.search(self._raw)
            if opening is None:
                return ""
            self._start = opening.end()
        content = self._raw[self._start + self._done:]
        end = self._safe_end(content)
        piece = content[:end]
        self._done += end
        if end < len(content) and content[end] == '"':
            self._closed = True
        try:
            return str(json.loads(f'"{piece}"'))
        except ValueError:
            return ""

    @staticmethod
    def _safe_end(content: str) -> int:
        """How much of `content` decodes whole: up to the closing quote, never cutting an
        escape sequence."""
        i = 0
        while i < len(content):
            char = content[i]
            if char == '"':
                return i
            if char == "\\":
                width = 6 if content[i + 1:i + 2] == "u" else 2
                if i + width > len(content):
                    return i
                i += width
                continue
            i += 1
        return i


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
    for path in result.files[:MAX_SAVED_FILES]:
        try:
            data = await sandbox.read_file(thread_id, path)
        except (SandboxError, OSError):
            continue  # gone again, or not a regular file
        file_id = await _save(sessionmaker, blobs, data, path.rsplit("/", 1)[-1])
        paths[f"sandbox:{WORK_DIR}/{path.lstrip('/')}"] = file_id
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
    if paths:
        parts.append("Files saved for the user (link them as written): " + ", ".join(paths))
    return "\n".join(parts) or "(the code ran and printed nothing)"


def file_paths(text: str, paths: Mapping[str, str], start: int = 0,
               final: bool = True) -> list[dict[str, Any]]:
    """`file_path` annotations for links to saved files in `text` from `start` on; unless
    `final`, a link at the very end may still be growing and waits."""
    found = []
    for match in LINK.finditer(text, start):
        if not final and match.end() == len(text):
            break
        file_id = paths.get(match[0])
        if file_id is not None:
            found.append({"type": "file_path", "text": match[0], "start_index": match.start(),
                          "end_index": match.end(), "file_path": {"file_id": file_id}})
    return found
