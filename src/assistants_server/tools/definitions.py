"""Tool definitions, tool resources and response formats as assistants and runs accept them.

Validation follows the service: function names match `^[a-zA-Z0-9_-]{1,64}$`, `parameters` is
a JSON Schema of type object, file_search options are bounded, and at most one vector store is
attached per assistant or thread.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import jsonschema
from pydantic import (
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from assistants_server.kit.validation import BY_TYPE, ids_of, rule_error, type_tag
from assistants_server.kit.wire import WireModel
from assistants_server.tools.registry import is_registered, tool_for

# The file_search ranker `auto` stands for, as the service named it.
RANKER = "default_2024_08_21"

class FunctionDefinition(WireModel):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        if isinstance(value, str) and not _is_function_name(value):
            raise rule_error(
                f"Invalid '{{param}}': string does not match pattern. Expected a string that "
                f"matches the pattern '^[a-zA-Z0-9_-]{{1,64}}$', but got '{value[:80]}'.",
                code="invalid_value")
        return value

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        kind = value.get("type", "object")
        if kind != "object":
            raise rule_error(
                "Invalid schema for function: '{param}' must be a JSON Schema of "
                f"'type: \"object\"', got 'type: \"{kind}\"'.", code="invalid_function_parameters")
        if _depth(value) > MAX_SCHEMA_DEPTH:
            raise rule_error(
                f"Invalid schema for function: '{{param}}' is nested deeper than "
                f"{MAX_SCHEMA_DEPTH} levels.", code="invalid_function_parameters")
        try:
            jsonschema.validators.validator_for(value).check_schema(value)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "(root)"
            raise rule_error(
                f"Invalid schema for function: '{{param}}' is not a valid JSON Schema at {where}: "
                f"{exc.message}", code="invalid_function_parameters") from None
        except Exception as exc:  # a malformed "$schema" and the like break the checker itself
            raise rule_error(
                f"Invalid schema for function: '{{param}}' could not be read as a JSON Schema "
                f"({type(exc).__name__}: {exc}).", code="invalid_function_parameters") from None
        return value


MAX_SCHEMA_DEPTH = 64


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion (the value may be very deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(
            item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def _is_function_name(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isascii() and (c.isalnum() or c in "_-") for c in value)


class FunctionTool(WireModel):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class RankingOptions(WireModel):
    ranker: Literal["auto", "default_2024_08_21"] = "auto"
    score_threshold: Annotated[float, Field(ge=0, le=1)] = 0.0


class FileSearchOptions(WireModel):
    max_num_results: Annotated[int, Field(ge=1, le=50)] | None = None
    ranking_options: RankingOptions | None = None


class FileSearchTool(WireModel):
    type: Literal["file_search"] = "file_search"
    file_search: FileSearchOptions | None = None


class CodeInterpreterTool(WireModel):
    type: Literal["code_interpreter"] = "code_interpreter"


class RegisteredTool(WireModel):
    """A tool added through tools/registry.py: validated by its own `definition` model."""

    model_config = ConfigDict(extra="allow")
    type: str

    @model_validator(mode="before")
    @classmethod
    def _as_registered(cls, value: Any) -> Any:
        definition = tool_for(value["type"]).definition if isinstance(value, dict) else None
        if definition is None:
            return value
        return definition.model_validate(value).model_dump(exclude_none=True)


_BUILT_IN = frozenset({"code_interpreter", "file_search", "function"})


def _tool_tag(value: Any) -> str | None:
    """The union member of a tool: its own for the built-in ones, `RegisteredTool` for one
    registered since (an unknown type fails on the built-in tags, as the service did)."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if isinstance(kind, str) and kind not in _BUILT_IN and is_registered(kind):
        return "=*"
    return type_tag(value)


Tool = Annotated[
    Annotated[CodeInterpreterTool, Tag("=code_interpreter")]
    | Annotated[FileSearchTool, Tag("=file_search")]
    | Annotated[FunctionTool, Tag("=function")]
    | Annotated[RegisteredTool, Tag("=*")],
    Discriminator(_tool_tag),
]


def dump_tools(tools: list[Any]) -> list[dict[str, Any]]:
    """The stored (and returned) form of validated tools."""
    dumped: list[dict[str, Any]] = []
    for tool in tools:
        item = tool.model_dump(exclude_none=True)
        if item["type"] == "function":
            item["function"].setdefault("strict", False)
        elif item["type"] == "file_search":
            item = _file_search_defaults(tool)
        dumped.append(item)
    return dumped


def _file_search_defaults(tool: FileSearchTool) -> dict[str, Any]:
    """file_search with its ranking options filled in, as the service showed them (the
    ranker `auto` stands for, named); `max_num_results` only when it was given."""
    options = tool.file_search or FileSearchOptions()
    ranking = options.ranking_options or RankingOptions()
    ranker = RANKER  # what `auto` stands for, and the only other value accepted
    shown: dict[str, Any] = {"ranking_options": {"ranker": ranker,
                                                 "score_threshold": ranking.score_threshold}}
    if options.max_num_results is not None:
        shown = {"max_num_results": options.max_num_results, **shown}
    return {"type": "file_search", "file_search": shown}


class CodeInterpreterResources(WireModel):
    file_ids: Annotated[list[str], Field(max_length=20), ids_of("file-")] = []


class VectorStoreSpec(WireModel):
    file_ids: Annotated[list[str], Field(max_length=10000), ids_of("file-")] = []
    chunking_strategy: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None


class FileSearchResources(WireModel):
    """At most one vector store: an existing one by id, or one made from `vector_stores`."""

    vector_store_ids: Annotated[list[str], Field(max_length=1), ids_of("vs_")] = []
    vector_stores: Annotated[list[VectorStoreSpec], Field(max_length=1)] | None = None

    @model_validator(mode="after")
    def _one_store(self) -> FileSearchResources:
        if self.vector_store_ids and self.vector_stores:
            raise rule_error(
                "Invalid '{param}': pass either 'vector_store_ids' or 'vector_stores', not "
                "both; a thread or an assistant uses at most one vector store.",
                code="invalid_value")
        return self


class ToolResources(WireModel):
    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None


def dump_tool_resources(resources: ToolResources | None) -> dict[str, Any]:
    if resources is None:
        return {}
    dumped: dict[str, Any] = {}
    if resources.code_interpreter is not None:
        dumped["code_interpreter"] = {"file_ids": list(resources.code_interpreter.file_ids)}
    if resources.file_search is not None:
        dumped["file_search"] = {
            "vector_store_ids": list(resources.file_search.vector_store_ids)
        }
    return dumped


class TextFormat(WireModel):
    type: Literal["text"] = "text"


class JsonObjectFormat(WireModel):
    type: Literal["json_object"] = "json_object"


class JsonSchemaSpec(WireModel):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    schema_: Annotated[dict[str, Any] | None, Field(alias="schema")] = None
    strict: bool | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class JsonSchemaFormat(WireModel):
    type: Literal["json_schema"] = "json_schema"
    json_schema: JsonSchemaSpec


class AutoFormat(WireModel):
    """The string "auto" on the wire; an object here so one tagged union checks every form."""

    type: Literal["auto"] = "auto"


def _auto_as_object(value: Any) -> Any:
    return {"type": value} if isinstance(value, str) else value


ResponseFormat = Annotated[
    Annotated[AutoFormat, Tag("=auto")]
    | Annotated[TextFormat, Tag("=text")]
    | Annotated[JsonObjectFormat, Tag("=json_object")]
    | Annotated[JsonSchemaFormat, Tag("=json_schema")],
    BY_TYPE,
    BeforeValidator(_auto_as_object),
]


def dump_response_format(value: Any) -> Any:
    if value is None or isinstance(value, AutoFormat):
        return "auto"
    return value.model_dump(exclude_none=True, by_alias=True)
