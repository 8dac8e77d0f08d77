"""HTTP endpoints of files (`/v1/files`). No beta header, as on the hosted service.

An upload is read by Starlette's multipart parser, which spools it to a temporary file rather
than memory; its size is checked against ASSISTANTS_MAX_UPLOAD_BYTES before it is stored.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile

from assistants_server.api.deps import SessionDep, SettingsDep
from assistants_server.api.pagination import ListPage, ListQuery, list_query, page_of
from assistants_server.files import service
from assistants_server.files.blobs import BlobStore
from assistants_server.files.schemas import DeletedFile, File
from assistants_server.kit.errors import InvalidRequestError, NotFoundError, file_too_large
from assistants_server.kit.uow import after_commit, on_rollback

router = APIRouter(tags=["files"])


def _blobs(request: Request) -> BlobStore:
    blobs: BlobStore = request.app.state.blobs
    return blobs


# Files page up to 10,000 at a time, and by default return them all (as the service).
FileListQuery = Annotated[ListQuery, Depends(list_query(max_limit=10_000, default_limit=10_000))]


@router.post("/v1/files")
async def create_file(request: Request, session: SessionDep, settings: SettingsDep) -> File:
    form = await request.form(max_files=1, max_fields=16)
    try:
        purpose = service.check_purpose(form.get("purpose"))
        expires_after = service.check_expiry(form.get("expires_after[anchor]"),
                                             form.get("expires_after[seconds]"))
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequestError(
                "Missing required parameter: 'file'. Send the file as a multipart/form-data "
                "part named 'file'.", param="file", code="missing_required_parameter")
        if upload.size is not None and upload.size > settings.max_upload_bytes:
            raise file_too_large(settings.max_upload_bytes, upload.size)
        row = await service.create_file(session, _blobs(request), upload.file,
                                        service.clean_filename(upload.filename), purpose,
                                        expires_after)
        blobs = _blobs(request)
        on_rollback(session, lambda: blobs.delete(row.id))  # no record will name these bytes
    finally:
        await form.close()
    return File.from_row(row)


@router.get("/v1/files")
async def list_files(
    session: SessionDep, query: FileListQuery,
    purpose: Annotated[str | None, Query()] = None,
) -> ListPage[File]:
    rows, has_more = await service.list_files(session, query, purpose)
    return ListPage[File](**page_of([File.from_row(r) for r in rows], has_more))


@router.get("/v1/files/{file_id}")
async def retrieve_file(file_id: str, session: SessionDep) -> File:
    return File.from_row(await service.get_file(session, file_id))


@router.delete("/v1/files/{file_id}")
async def delete_file(file_id: str, session: SessionDep, request: Request) -> DeletedFile:
    # Leaves every vector store it was in, chunks and all, in the same commit (the app
    # wires `forget_file`: what else holds files is not this package's business).
    deleted = await service.delete_file(session, file_id, request.app.state.forget_file)
    blobs = _blobs(request)
    after_commit(session, lambda: blobs.delete(deleted))
    return DeletedFile(id=deleted)


@router.get("/v1/files/{file_id}/content")
async def file_content(file_id: str, session: SessionDep, request: Request) -> Any:
    """The bytes as uploaded. Unlike the hosted service, files of every purpose may be
    downloaded: on your own server they are your own files."""
    row = await service.get_file(session, file_id)
    try:
        chunks = await _blobs(request).open(row.id)
    except FileNotFoundError:
        raise NotFoundError(f"No such File object: {file_id} (its content is missing from "
                            "this server's file store)") from None
    return StreamingResponse(chunks, media_type="application/octet-stream",
                             headers={"Content-Length": str(row.bytes)})
