"""Wire models of vector stores, their files, file batches and search results."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from assistants_server.kit.validation import Metadata, rule_error
from assistants_server.kit.wire import WireModel

MAX_ATTRIBUTES, MAX_ATTRIBUTE_KEY, MAX_ATTRIBUTE_TEXT = 16, 64, 512


class ExpiresAfter(WireModel):
    anchor: Literal["last_active_at"]
    days: Annotated[int, Field(ge=1, le=365)]


def check_attributes(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if len(value) > MAX_ATTRIBUTES:
        raise rule_error(f"'{{param}}' has {len(value)} keys; at most {MAX_ATTRIBUTES} are "
                         "allowed.", code="invalid_value")
    for key, item in value.items():
        if len(key) > MAX_ATTRIBUTE_KEY:
            raise rule_error(f"'{{param}}' key '{key[:20]}...' is longer than "
                             f"{MAX_ATTRIBUTE_KEY} characters.", code="invalid_value")
        if isinstance(item, str) and len(item) > MAX_ATTRIBUTE_TEXT:
            raise rule_error(f"'{{param}}.{key}' is longer than {MAX_ATTRIBUTE_TEXT} "
                             "characters.", code="invalid_value")
        if not isinstance(item, str | int | float | bool):
            raise rule_error(f"'{{param}}.{key}' must be a string, a number or a boolean.",
                             code="invalid_type")
    return value


class _Attributed(WireModel):
    attributes: dict[str, Any] | None = None

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_attributes(value)


class CreateVectorStoreRequest(WireModel):
    file_ids: Annotated[list[str], Field(max_length=500)] = []
    name: Annotated[str, Field(max_length=256)] | None = None
    description: Annotated[str, Field(max_length=512)] | None = None
    expires_after: ExpiresAfter | None = None
    chunking_strategy: dict[str, Any] | None = None
    metadata: Metadata = {}


class ModifyVectorStoreRequest(WireModel):
    name: Annotated[str, Field(max_length=256)] | None = None
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None


class CreateVectorStoreFileRequest(_Attributed):
    file_id: str
    chunking_strategy: dict[str, Any] | None = None


class UpdateVectorStoreFileRequest(_Attributed):
    attributes: dict[str, Any] | None


class CreateFileBatchRequest(_Attributed):
    file_ids: Annotated[list[str], Field(min_length=1, max_length=2000)] | None = None
    files: Annotated[list[CreateVectorStoreFileRequest],
                     Field(min_length=1, max_length=2000)] | None = None
    chunking_strategy: dict[str, Any] | None = None


class RankingOptions(WireModel):
    ranker: Literal["none", "auto", "default-2024-11-15", "default_2024_08_21"] = "auto"
    score_threshold: Annotated[float, Field(ge=0, le=1)] = 0.0


class SearchRequest(WireModel):
    query: str | Annotated[list[str], Field(min_length=1)]
    rewrite_query: bool = False
    max_num_results: Annotated[int, Field(ge=1, le=50)] = 10
    filters: dict[str, Any] | None = None
    ranking_options: RankingOptions | None = None


class FileCounts(BaseModel):
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class VectorStore(BaseModel):
    id: str
    object: Literal["vector_store"] = "vector_store"
    created_at: int
    name: str
    usage_bytes: int
    file_counts: FileCounts
    status: Literal["expired", "in_progress", "completed"]
    expires_after: dict[str, Any] | None
    expires_at: int | None
    last_active_at: int | None
    metadata: dict[str, str]

    @model_serializer(mode="wrap")
    def _without_absent_expiry(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # The spec has `expires_after` optional but not nullable: absent when there is none.
        data: dict[str, Any] = handler(self)
        if data.get("expires_after") is None:
            data.pop("expires_after", None)
        return data


class VectorStoreFile(BaseModel):
    id: str
    object: Literal["vector_store.file"] = "vector_store.file"
    usage_bytes: int
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    last_error: dict[str, str] | None
    chunking_strategy: dict[str, Any]
    attributes: dict[str, Any]


class FileBatch(BaseModel):
    id: str
    object: Literal["vector_store.files_batch"] = "vector_store.files_batch"
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    file_counts: FileCounts


class DeletedVectorStoreFile(BaseModel):
    id: str
    object: Literal["vector_store.file.deleted"] = "vector_store.file.deleted"
    deleted: bool = True


class SearchResult(BaseModel):
    file_id: str
    filename: str
    score: float
    attributes: dict[str, Any]
    content: list[dict[str, str]]


class SearchResultsPage(BaseModel):
    object: Literal["vector_store.search_results.page"] = "vector_store.search_results.page"
    search_query: list[str]
    data: list[SearchResult]
    has_more: bool = False
    next_page: str | None = None


class FileContentPage(BaseModel):
    object: Literal["vector_store.file_content.page"] = "vector_store.file_content.page"
    data: list[dict[str, str]]
    has_more: bool = False
    next_page: str | None = None
