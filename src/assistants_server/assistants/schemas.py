"""Wire models of assistants: the request bodies accepted and the object returned."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from assistants_server.db.models import AssistantRow
from assistants_server.kit.validation import Metadata
from assistants_server.kit.wire import WireModel
from assistants_server.tools.definitions import ResponseFormat, Tool, ToolResources

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
Name = Annotated[str, Field(max_length=256)]
Description = Annotated[str, Field(max_length=512)]
Instructions = Annotated[str, Field(max_length=256_000)]
Temperature = Annotated[float, Field(ge=0, le=2)]
TopP = Annotated[float, Field(ge=0, le=1)]


class CreateAssistantRequest(WireModel):
    model: str
    name: Name | None = None
    description: Description | None = None
    instructions: Instructions | None = None
    reasoning_effort: ReasoningEffort | None = None
    tools: Annotated[list[Tool], Field(max_length=128)] = []
    tool_resources: ToolResources | None = None
    metadata: Metadata = {}
    temperature: Temperature | None = None
    top_p: TopP | None = None
    response_format: ResponseFormat | None = None


class ModifyAssistantRequest(WireModel):
    """Every field optional; only the fields sent change (null clears a nullable one)."""

    model: str | None = None
    name: Name | None = None
    description: Description | None = None
    instructions: Instructions | None = None
    reasoning_effort: ReasoningEffort | None = None
    tools: Annotated[list[Tool], Field(max_length=128)] | None = None
    tool_resources: ToolResources | None = None
    metadata: Metadata | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    response_format: ResponseFormat | None = None


class Assistant(BaseModel):
    id: str
    object: Literal["assistant"] = "assistant"
    created_at: int
    name: str | None
    description: str | None
    model: str
    instructions: str | None
    tools: list[dict[str, Any]]
    tool_resources: dict[str, Any] | None
    metadata: dict[str, str]
    temperature: float | None
    top_p: float | None
    response_format: Any
    reasoning_effort: str | None

    @classmethod
    def from_row(cls, row: AssistantRow) -> Assistant:
        return cls(
            id=row.id,
            created_at=row.created_at,
            name=row.name,
            description=row.description,
            model=row.model,
            instructions=row.instructions,
            tools=row.tools,
            tool_resources=row.tool_resources,
            metadata=row.metadata_,
            temperature=row.temperature,
            top_p=row.top_p,
            response_format=row.response_format,
            reasoning_effort=row.reasoning_effort,
        )
