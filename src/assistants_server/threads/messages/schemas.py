"""Wire models of messages: content parts as sent and as returned, attachments, the object."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, Tag, field_validator

from assistants_server.db.models import MessageRow
from assistants_server.kit.validation import BY_TYPE, Metadata, rule_error
from assistants_server.kit.wire import WireModel
from assistants_server.tools.definitions import CodeInterpreterTool

Detail = Literal["auto", "low", "high"]


class TextPart(WireModel):
    type: Literal["text"] = "text"
    text: str


class ImageFile(WireModel):
    file_id: str
    detail: Detail = "auto"


class ImageFilePart(WireModel):
    type: Literal["image_file"] = "image_file"
    image_file: ImageFile


class ImageUrl(WireModel):
    url: str
    detail: Detail = "auto"

    @field_validator("url")
    @classmethod
    def _web_or_data_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://", "data:image/")):
            raise rule_error("Invalid '{param}': expected an image URL starting with "
                             "'http://', 'https://' or 'data:image/'.", code="invalid_url")
        return value


class ImageUrlPart(WireModel):
    type: Literal["image_url"] = "image_url"
    image_url: ImageUrl


ContentPart = Annotated[
    Annotated[TextPart, Tag("=text")]
    | Annotated[ImageFilePart, Tag("=image_file")]
    | Annotated[ImageUrlPart, Tag("=image_url")],
    BY_TYPE,
]


def _content_as_parts(value: Any) -> Any:
    if isinstance(value, str):
        if not value:
            raise rule_error("Invalid '{param}': message content must be non-empty.",
                             code="empty_string")
        return [{"type": "text", "text": value}]
    if value is None:
        raise rule_error("Invalid type for '{param}': expected a string or an array of content "
                         "parts, but got null instead.", code="invalid_type")
    return value


Content = Annotated[list[ContentPart], Field(min_length=1), BeforeValidator(_content_as_parts)]


class FileSearchTypeOnly(WireModel):
    type: Literal["file_search"] = "file_search"


class Attachment(WireModel):
    file_id: str
    tools: list[
        Annotated[
            Annotated[CodeInterpreterTool, Tag("=code_interpreter")]
            | Annotated[FileSearchTypeOnly, Tag("=file_search")],
            BY_TYPE,
        ]
    ] = []


class CreateMessageRequest(WireModel):
    role: Literal["user", "assistant"]
    content: Content
    attachments: list[Attachment] | None = None
    metadata: Metadata = {}


class ModifyMessageRequest(WireModel):
    metadata: Metadata | None = None


def content_to_wire(parts: list[Any]) -> list[dict[str, Any]]:
    """Stored (response-side) content from request parts: text becomes {value, annotations}."""
    stored: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            stored.append({"type": "text", "text": {"value": part.text, "annotations": []}})
        else:
            stored.append(part.model_dump())
    return stored


class Message(BaseModel):
    id: str
    object: Literal["thread.message"] = "thread.message"
    created_at: int
    thread_id: str
    status: str
    incomplete_details: dict[str, Any] | None
    completed_at: int | None
    incomplete_at: int | None
    role: str
    content: list[dict[str, Any]]
    assistant_id: str | None
    run_id: str | None
    attachments: list[dict[str, Any]]
    metadata: dict[str, str]

    @classmethod
    def from_row(cls, row: MessageRow) -> Message:
        return cls(
            id=row.id,
            created_at=row.created_at,
            thread_id=row.thread_id,
            status=row.status,
            incomplete_details=row.incomplete_details,
            completed_at=row.completed_at,
            incomplete_at=row.incomplete_at,
            role=row.role,
            content=row.content,
            assistant_id=row.assistant_id,
            run_id=row.run_id,
            attachments=row.attachments,
            metadata=row.metadata_,
        )
