"""Rules and queries of files. Bytes go to the blob store before the record is written, and
leave it only after the record's deletion committed, so a record never names missing bytes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import BinaryIO

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.api.pagination import ListQuery, delete_listed, fetch_page
from assistants_server.db.models import FileRow
from assistants_server.files.blobs import BlobStore
from assistants_server.files.schemas import UPLOAD_PURPOSES
from assistants_server.kit.errors import InvalidRequestError, NotFoundError
from assistants_server.kit.ids import check_id, new_id
from assistants_server.kit.uow import after_commit

MIN_EXPIRY_SECONDS, MAX_EXPIRY_SECONDS = 3600, 2_592_000


def check_purpose(purpose: object) -> str:
    if purpose is None or purpose == "":
        raise InvalidRequestError("Missing required parameter: 'purpose'.", param="purpose",
                                  code="missing_required_parameter")
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequestError(
            f"Invalid value for 'purpose': '{purpose}'. Expected one of: "
            f"{', '.join(UPLOAD_PURPOSES)}.", param="purpose", code="invalid_value")
    return str(purpose)


def check_expiry(anchor: object, seconds: object) -> int | None:
    """`expires_after[anchor]` and `expires_after[seconds]`: the file's lifetime, if any."""
    if anchor is None and seconds is None:
        return None
    for name, value in (("anchor", anchor), ("seconds", seconds)):
        if value is None or value == "":
            raise InvalidRequestError(
                f"Missing required parameter: 'expires_after[{name}]'.",
                param=f"expires_after.{name}", code="missing_required_parameter")
    if anchor != "created_at":
        raise InvalidRequestError(
            "Invalid value for 'expires_after.anchor': expected 'created_at'.",
            param="expires_after.anchor", code="invalid_value")
    try:
        value = int(str(seconds))
    except ValueError:
        value = -1
    if not MIN_EXPIRY_SECONDS <= value <= MAX_EXPIRY_SECONDS:
        raise InvalidRequestError(
            f"Invalid 'expires_after.seconds': expected a whole number of seconds from "
            f"{MIN_EXPIRY_SECONDS} to {MAX_EXPIRY_SECONDS}, got '{seconds}'.",
            param="expires_after.seconds", code="invalid_value")
    return value


MAX_FILENAME = 1024


def clean_filename(name: str | None) -> str:
    """The uploaded name without any directories in it, at most 1,024 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip() or "file"
    if len(base) > MAX_FILENAME:
        raise InvalidRequestError(
            f"Invalid 'file': the file name is {len(base)} characters long; at most "
            f"{MAX_FILENAME} are accepted.", param="file", code="invalid_value")
    return base


async def create_file(
    session: AsyncSession, blobs: BlobStore, source: BinaryIO, filename: str, purpose: str,
    expires_after: int | None,
) -> FileRow:
    file_id = new_id("file-")
    size = await blobs.put(file_id, source)
    now = int(time.time())
    row = FileRow(id=file_id, created_at=now, metadata_={}, bytes=size, filename=filename,
                  purpose=purpose, status="processed",
                  expires_at=now + expires_after if expires_after is not None else None)
    session.add(row)
    try:
        await session.flush()
    except BaseException:
        await blobs.delete(file_id)
        raise
    return row


def _live(now: int) -> ColumnElement[bool]:
    return or_(FileRow.expires_at.is_(None), FileRow.expires_at > now)


async def get_file(session: AsyncSession, file_id: str) -> FileRow:
    check_id(file_id, "file-", "file_id")
    row = await session.scalar(
        select(FileRow).where(FileRow.id == file_id, _live(int(time.time()))))
    if row is None:
        raise NotFoundError(f"No such File object: {file_id}")
    return row


async def list_files(
    session: AsyncSession, query: ListQuery, purpose: str | None
) -> tuple[list[FileRow], bool]:
    scope = [FileRow.purpose == purpose] if purpose else []
    return await fetch_page(session, FileRow, query, *scope, visible=[_live(int(time.time()))])


Forget = Callable[[AsyncSession, str], Awaitable[None]]


async def delete_file(session: AsyncSession, file_id: str, forget: Forget | None = None) -> str:
    """Delete the file's record (`forget` takes it out of what else uses it, in the same
    transaction); the caller deletes its bytes after the commit."""
    row = await get_file(session, file_id)
    await _remove(session, row, forget)
    return row.id


async def _remove(session: AsyncSession, row: FileRow, forget: Forget | None) -> None:
    await delete_listed(session, row)
    if forget is not None:
        await forget(session, row.id)


async def purge_expired(
    session: AsyncSession, blobs: BlobStore, now: int, forget: Forget | None = None,
) -> int:
    """Forget files past their `expires_at`: records (leaving tombstones, so cursors naming
    them keep working; `forget` takes each out of what else uses it, in the same
    transaction), and their bytes once the caller has committed."""
    expired = list(await session.scalars(
        select(FileRow).where(FileRow.expires_at <= now).limit(500)))
    for row in expired:
        await _remove(session, row, forget)
    for row in expired:
        after_commit(session, partial(blobs.delete, row.id))
    return len(expired)
