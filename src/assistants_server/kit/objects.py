"""Response shapes that every resource shares."""

from __future__ import annotations

from pydantic import BaseModel


class DeletedObject(BaseModel):
    """`{"id", "object": "<type>.deleted", "deleted": true}`, the answer to every DELETE."""

    id: str
    object: str
    deleted: bool = True
