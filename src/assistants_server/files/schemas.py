"""Wire models of files."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from assistants_server.db.models import FileRow

# What may be uploaded; `assistants_output` files are made by the server (code_interpreter).
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


class File(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    expires_at: int | None
    filename: str
    purpose: str
    status: str
    status_details: str | None

    @classmethod
    def from_row(cls, row: FileRow) -> File:
        return cls(id=row.id, bytes=row.bytes, created_at=row.created_at,
                   expires_at=row.expires_at, filename=row.filename, purpose=row.purpose,
                   status=row.status, status_details=row.status_details)


class DeletedFile(BaseModel):
    """The service answered a file deletion with `object: "file"`, not `file.deleted`."""

    id: str
    object: Literal["file"] = "file"
    deleted: bool = True
