"""Rules and queries for runs and run steps. Functions flush; the request commits, and the
router wakes the executor once the commit is done."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.api.pagination import ListQuery, fetch_page
from assistants_server.assistants.service import get_assistant
from assistants_server.db.leases import RUNS, grant
from assistants_server.db.models import AssistantRow, RunRow, RunStepRow, ThreadRow
from assistants_server.db.states import (
    QUEUED,
    TransitionError,
    transition_run,
    transition_step,
)
from assistants_server.kit.errors import InvalidRequestError, NotFoundError, not_found
from assistants_server.kit.ids import check_id, new_id
from assistants_server.kit.metadata import merged_metadata
from assistants_server.runs.lifecycle import end_run, on_fresh_state
from assistants_server.runs.outbox import Outbox
from assistants_server.runs.schemas import (
    CreateRunRequest,
    CreateThreadAndRunRequest,
    ModifyRunRequest,
    RunOptions,
    SubmitToolOutputsRequest,
)
from assistants_server.threads.creation import create_thread_with_messages
from assistants_server.threads.messages.service import add_messages
from assistants_server.threads.schemas import CreateThreadRequest
from assistants_server.threads.service import active_run_id, get_thread
from assistants_server.tools.definitions import (
    dump_response_format,
    dump_tool_resources,
    dump_tools,
)
from assistants_server.vector_stores.resources import create_inline_stores

# Built once: each poll of a run reads it, and building a statement costs more than SQLite
# takes to answer it.
_IN_THREAD = select(RunRow).where(RunRow.id == bindparam("id"),
                                  RunRow.thread_id == bindparam("thread_id"))


class Lease(NamedTuple):
    """Who drives a run from the start: the process that streams it, so that its events are
    produced where its stream is served."""

    owner: str
    seconds: float

    def grant(self, run: RunRow) -> None:
        grant(RUNS, run, self.owner, self.seconds)


async def create_run(
    session: AsyncSession, thread_id: str, body: CreateRunRequest, lifetime: int,
    lease: Lease | None = None, include: frozenset[str] = frozenset(),
) -> RunRow:
    check_id(thread_id, "thread_", "thread_id")
    try:
        assistant = await get_assistant(session, body.assistant_id)
    except NotFoundError:
        await get_thread(session, thread_id)  # a missing thread is named first
        raise
    if body.additional_messages:
        thread = await get_thread(session, thread_id)
        # The insert below refuses a second active run too; asked first, the error names the
        # run rather than the messages.
        if (active := await active_run_id(session, thread_id)) is not None:
            raise _already_active(thread_id, active)
        await add_messages(session, thread, body.additional_messages)
    else:  # read in the caller's project: the foreign key alone would take another project's
        await get_thread(session, thread_id)
    instructions = _instructions(body, assistant)
    if body.additional_instructions:
        # One space, as a compatibility suite checked against the hosted service in 2024
        # expects of the run's `instructions` (its reference says only "appends").
        instructions = f"{instructions} {body.additional_instructions}".lstrip()
    return await _insert_run(session, thread_id, assistant, body, instructions, lifetime,
                             reasoning_effort=body.reasoning_effort, lease=lease,
                             include=include)


async def create_thread_and_run(
    session: AsyncSession, body: CreateThreadAndRunRequest, lifetime: int,
    lease: Lease | None = None,
) -> tuple[ThreadRow, RunRow]:
    assistant = await get_assistant(session, body.assistant_id)
    thread = await create_thread_with_messages(session, body.thread or CreateThreadRequest())
    await create_inline_stores(session, body.tool_resources)
    resources = (dump_tool_resources(body.tool_resources) if body.tool_resources is not None
                 else None)
    run = await _insert_run(session, thread.id, assistant, body, _instructions(body, assistant),
                            lifetime, tool_resources=resources, lease=lease)
    return thread, run


def _instructions(body: RunOptions, assistant: AssistantRow) -> str:
    """The request's instructions replace the assistant's."""
    return body.instructions if body.instructions is not None else assistant.instructions or ""


async def _insert_run(
    session: AsyncSession,
    thread_id: str,
    assistant: AssistantRow,
    body: RunOptions,
    instructions: str,
    lifetime: int,
    *,
    reasoning_effort: str | None = None,
    tool_resources: dict[str, object] | None = None,
    lease: Lease | None = None,
    include: frozenset[str] = frozenset(),
) -> RunRow:
    """A queued run snapshotting the assistant's configuration under the request's overrides.
    The unique index on `active_thread_id` refuses a second active run, however they race.
    `lifetime`: seconds until it expires; its model was checked by the caller."""
    model = body.model or assistant.model
    now = int(time.time())
    sent = body.model_fields_set
    run = RunRow(
        id=new_id("run_"), created_at=now, thread_id=thread_id, active_thread_id=thread_id,
        assistant_id=assistant.id, status=QUEUED, expires_at=now + lifetime,
        model=model, instructions=instructions,
        tools=dump_tools(body.tools) if body.tools is not None else assistant.tools,
        tool_resources=assistant.tool_resources if tool_resources is None else tool_resources,
        metadata_=body.metadata,
        temperature=body.temperature if "temperature" in sent else assistant.temperature,
        top_p=body.top_p if "top_p" in sent else assistant.top_p,
        max_prompt_tokens=body.max_prompt_tokens,
        max_completion_tokens=body.max_completion_tokens,
        truncation_strategy=(body.truncation_strategy.model_dump() if body.truncation_strategy
                             else {"type": "auto", "last_messages": None}),
        response_format=(dump_response_format(body.response_format)
                         if body.response_format is not None else assistant.response_format),
        tool_choice=_dump_tool_choice(body.tool_choice),
        parallel_tool_calls=body.parallel_tool_calls,
        reasoning_effort=reasoning_effort or assistant.reasoning_effort,
        step_include=sorted(include) or None, streamed=bool(body.stream),
    )
    if lease is not None:
        lease.grant(run)
    try:
        session.add(run)
        await session.flush()
    except IntegrityError:
        # Nothing of this request is kept: roll back, then say why: the thread does not exist
        # (the foreign key), or another run holds it.
        await session.rollback()
        active = await active_run_id(session, thread_id)
        if active is None:
            await get_thread(session, thread_id)
        raise _already_active(thread_id, active or "(just finished)") from None
    return run


def _dump_tool_choice(choice: object) -> object:
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        return choice
    return choice.model_dump()  # type: ignore[attr-defined]


def _already_active(thread_id: str, run_id: str) -> InvalidRequestError:
    return InvalidRequestError(f"Thread {thread_id} already has an active run {run_id}.")


async def get_run(session: AsyncSession, thread_id: str, run_id: str) -> RunRow:
    check_id(thread_id, "thread_", "thread_id")
    check_id(run_id, "run_", "run_id")
    run = await session.scalar(_IN_THREAD, {"id": run_id, "thread_id": thread_id})
    if run is None:
        raise not_found("run", run_id)
    return run


async def list_runs(
    session: AsyncSession, thread_id: str, query: ListQuery
) -> tuple[list[RunRow], bool]:
    await get_thread(session, thread_id)
    return await fetch_page(session, RunRow, query, RunRow.thread_id == thread_id)


async def modify_run(
    session: AsyncSession, thread_id: str, run_id: str, body: ModifyRunRequest
) -> RunRow:
    run = await get_run(session, thread_id, run_id)
    if "metadata" in body.model_fields_set:
        run.metadata_ = merged_metadata(run.metadata_, body.metadata)
    await session.flush()
    return run


async def cancel_run(
    session: AsyncSession, thread_id: str, run_id: str, outbox: Outbox
) -> RunRow:
    return await on_fresh_state(lambda: _cancel(session, thread_id, run_id, outbox),
                                _discard(session, outbox))


def _discard(session: AsyncSession, outbox: Outbox) -> Callable[[], Awaitable[None]]:
    """The reset of a retried change: the request has written nothing else yet, so rolling
    back only drops the stale read, and the events of the failed attempt go with it."""

    async def reset() -> None:
        await session.rollback()
        outbox.clear()

    return reset


async def _cancel(session: AsyncSession, thread_id: str, run_id: str, outbox: Outbox) -> RunRow:
    """Queued and waiting runs are cancelled at once; a run being worked on goes to
    `cancelling` and its worker finishes the cancellation."""
    run = await get_run(session, thread_id, run_id)
    if run.status not in ("queued", "in_progress", "requires_action"):
        raise InvalidRequestError(f"Cannot cancel run with status '{run.status}'.")
    now = int(time.time())
    if run.status == "in_progress":
        transition_run(run, "cancelling", now)
        outbox.run(run)
    else:
        await end_run(session, run, "cancelled", now, outbox)
    await session.flush()
    return run


async def submit_tool_outputs(
    session: AsyncSession, thread_id: str, run_id: str, body: SubmitToolOutputsRequest,
    outbox: Outbox, lease: Lease | None = None,
) -> RunRow:
    return await on_fresh_state(
        lambda: _submit(session, thread_id, run_id, body, outbox, lease),
        _discard(session, outbox))


async def _submit(
    session: AsyncSession, thread_id: str, run_id: str, body: SubmitToolOutputsRequest,
    outbox: Outbox, lease: Lease | None,
) -> RunRow:
    run = await get_run(session, thread_id, run_id)
    if run.status != "requires_action" or run.required_action is None:
        raise InvalidRequestError(f'Runs in status "{run.status}" do not accept tool outputs.')
    calls = run.required_action["submit_tool_outputs"]["tool_calls"]
    expected = [call["id"] for call in calls]
    given = {output.tool_call_id: output.output for output in body.tool_outputs}
    unknown = [call_id for call_id in given if call_id not in expected]
    missing = [call_id for call_id in expected if call_id not in given]
    if unknown:
        raise InvalidRequestError(
            f"Invalid 'tool_outputs': no tool call with id '{unknown[0]}' is waiting for an "
            f"output in this run (waiting: {', '.join(expected)}).", param="tool_outputs")
    if missing:
        raise InvalidRequestError(
            f"Expected tool outputs for call_ids {expected}, got {list(given)}. Missing: "
            f"{', '.join(missing)}. Submit every output in one request.", param="tool_outputs")
    step = await session.scalar(
        select(RunStepRow).where(RunStepRow.run_id == run.id, RunStepRow.type == "tool_calls",
                                 RunStepRow.status == "in_progress"))
    now = int(time.time())
    if step is not None:
        step.step_details = {**step.step_details, "tool_calls": [
            {**call, "function": {**call["function"], "output": given.get(call["id"])}}
            if call.get("type") == "function" else call
            for call in step.step_details["tool_calls"]]}
        transition_step(step, "completed", now)
        outbox.step(step, run.expires_at, include=run.include)
    try:
        transition_run(run, "queued", now)
    except TransitionError as exc:  # pragma: no cover - guarded by the status check above
        raise InvalidRequestError(str(exc)) from exc
    if lease is not None:
        lease.grant(run)
    run.streamed = run.streamed or bool(body.stream)
    outbox.run(run)
    await session.flush()
    return run


async def list_steps(
    session: AsyncSession, thread_id: str, run_id: str, query: ListQuery
) -> tuple[RunRow, list[RunStepRow], bool]:
    run = await get_run(session, thread_id, run_id)
    rows, has_more = await fetch_page(session, RunStepRow, query, RunStepRow.run_id == run_id)
    return run, rows, has_more


async def get_step(
    session: AsyncSession, thread_id: str, run_id: str, step_id: str
) -> tuple[RunRow, RunStepRow]:
    run = await get_run(session, thread_id, run_id)
    check_id(step_id, "step_", "step_id")
    step = await session.scalar(
        select(RunStepRow).where(RunStepRow.id == step_id, RunStepRow.run_id == run_id))
    if step is None:
        raise not_found("run step", step_id)
    return run, step
