"""Wire models of runs and run steps: the request bodies accepted and the objects returned."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, Tag

from assistants_server.assistants.schemas import Instructions, ReasoningEffort, Temperature, TopP
from assistants_server.db.models import RunRow, RunStepRow
from assistants_server.kit.validation import BY_TYPE, Metadata
from assistants_server.kit.wire import WireModel
from assistants_server.threads.messages.schemas import CreateMessageRequest
from assistants_server.threads.schemas import MAX_MESSAGES, CreateThreadRequest
from assistants_server.tools.definitions import ResponseFormat, Tool, ToolResources
from assistants_server.tools.registry import tool_for

# A column holds up to 2^31 - 1; no model's window comes near it.
TokenLimit = Annotated[int, Field(ge=256, le=2**31 - 1)]


class TruncationStrategy(WireModel):
    type: Literal["auto", "last_messages"] = "auto"
    last_messages: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


class NamedFunction(WireModel):
    name: str


class FunctionChoice(WireModel):
    type: Literal["function"] = "function"
    function: NamedFunction


class FileSearchChoice(WireModel):
    type: Literal["file_search"] = "file_search"


class CodeInterpreterChoice(WireModel):
    type: Literal["code_interpreter"] = "code_interpreter"


NamedToolChoice = Annotated[
    Annotated[FunctionChoice, Tag("=function")]
    | Annotated[FileSearchChoice, Tag("=file_search")]
    | Annotated[CodeInterpreterChoice, Tag("=code_interpreter")],
    BY_TYPE,
]
ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class RunOptions(WireModel):
    """What create-run and create-thread-and-run share."""

    assistant_id: str
    model: str | None = None
    instructions: Instructions | None = None
    tools: Annotated[list[Tool], Field(max_length=128)] | None = None
    metadata: Metadata = {}
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stream: bool | None = None
    max_prompt_tokens: TokenLimit | None = None
    max_completion_tokens: TokenLimit | None = None
    truncation_strategy: TruncationStrategy | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool = True
    response_format: ResponseFormat | None = None


class CreateRunRequest(RunOptions):
    reasoning_effort: ReasoningEffort | None = None
    additional_instructions: str | None = None
    additional_messages: Annotated[list[CreateMessageRequest],
                                   Field(max_length=MAX_MESSAGES)] | None = None


class CreateThreadAndRunRequest(RunOptions):
    thread: CreateThreadRequest | None = None
    tool_resources: ToolResources | None = None


class ModifyRunRequest(WireModel):
    metadata: Metadata | None = None


class ToolOutput(WireModel):
    tool_call_id: str
    output: str = ""


class SubmitToolOutputsRequest(WireModel):
    tool_outputs: list[ToolOutput]
    stream: bool | None = None


class Run(BaseModel):
    id: str
    object: Literal["thread.run"] = "thread.run"
    created_at: int
    thread_id: str
    assistant_id: str
    status: str
    required_action: dict[str, Any] | None
    last_error: dict[str, Any] | None
    expires_at: int | None
    started_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    incomplete_details: dict[str, Any] | None
    model: str
    instructions: str
    tools: list[dict[str, Any]]
    tool_resources: dict[str, Any]
    metadata: dict[str, str]
    usage: dict[str, Any] | None
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: dict[str, Any]
    response_format: Any
    tool_choice: Any
    parallel_tool_calls: bool
    reasoning_effort: str | None

    @classmethod
    def from_row(cls, row: RunRow) -> Run:
        return cls(
            id=row.id, created_at=row.created_at, thread_id=row.thread_id,
            assistant_id=row.assistant_id, status=row.status,
            required_action=row.required_action, last_error=row.last_error,
            expires_at=row.expires_at, started_at=row.started_at,
            cancelled_at=row.cancelled_at, failed_at=row.failed_at,
            completed_at=row.completed_at, incomplete_details=row.incomplete_details,
            model=row.model, instructions=row.instructions, tools=row.tools,
            tool_resources=row.tool_resources, metadata=row.metadata_, usage=row.usage,
            temperature=row.temperature, top_p=row.top_p,
            max_prompt_tokens=row.max_prompt_tokens,
            max_completion_tokens=row.max_completion_tokens,
            truncation_strategy=row.truncation_strategy, response_format=row.response_format,
            tool_choice=row.tool_choice, parallel_tool_calls=row.parallel_tool_calls,
            reasoning_effort=row.reasoning_effort,
        )


class RunStep(BaseModel):
    id: str
    object: Literal["thread.run.step"] = "thread.run.step"
    created_at: int
    run_id: str
    assistant_id: str
    thread_id: str
    type: str
    status: str
    cancelled_at: int | None
    completed_at: int | None
    expired_at: int | None
    expires_at: int | None
    failed_at: int | None
    last_error: dict[str, Any] | None
    step_details: dict[str, Any]
    usage: dict[str, Any] | None
    metadata: dict[str, str]

    @classmethod
    def from_row(cls, row: RunStepRow, run_expires_at: int | None = None,
                 include: frozenset[str] = frozenset()) -> RunStep:
        return cls(
            id=row.id, created_at=row.created_at, run_id=row.run_id,
            assistant_id=row.assistant_id, thread_id=row.thread_id, type=row.type,
            status=row.status, cancelled_at=row.cancelled_at, completed_at=row.completed_at,
            expired_at=row.expired_at, expires_at=run_expires_at, failed_at=row.failed_at,
            last_error=row.last_error, usage=row.usage, metadata=row.metadata_,
            step_details=shown_details(row.step_details, include),
        )


def shown_details(details: dict[str, Any], include: frozenset[str]) -> dict[str, Any]:
    """Step details as clients see them, each call as its tool shows it (without what only
    the model was shown; with what `include[]` asked for)."""
    if details.get("type") != "tool_calls":
        return details
    return {**details, "tool_calls": [tool_for(call["type"]).public(call, include)
                                      for call in details["tool_calls"]]}
