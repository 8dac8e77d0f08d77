"""Wire models of threads."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from assistants_server.db.models import ThreadRow
from assistants_server.kit.validation import Metadata
from assistants_server.kit.wire import WireModel
from assistants_server.threads.messages.schemas import CreateMessageRequest
from assistants_server.tools.definitions import ToolResources

MAX_MESSAGES = 32  # messages one request may create (a thread's, a run's additional ones)


class CreateThreadRequest(WireModel):
    # The hosted service's bound: a request is not a bulk import (one of 20,000 stalled all).
    messages: Annotated[list[CreateMessageRequest], Field(max_length=MAX_MESSAGES)] = []
    tool_resources: ToolResources | None = None
    metadata: Metadata = {}


class ModifyThreadRequest(WireModel):
    tool_resources: ToolResources | None = None
    metadata: Metadata | None = None


class Thread(BaseModel):
    id: str
    object: Literal["thread"] = "thread"
    created_at: int
    metadata: dict[str, str]
    tool_resources: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: ThreadRow) -> Thread:
        return cls(
            id=row.id,
            created_at=row.created_at,
            metadata=row.metadata_,
            tool_resources=row.tool_resources,
        )
