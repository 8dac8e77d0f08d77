"""HTTP endpoints of runs and run steps, and of create-thread-and-run (`POST /v1/threads/runs`).

A write commits, then publishes its events, then sets the run going (every process's executor
is woken, or this one adopts the run), so the executor always finds the run it is told about and a
stream always starts with the events of the request that opened it. `stream: true` answers
with the run's event stream (events/sse.py); validation errors come before it, as plain JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.api.deps import (
    ModelsDep,
    ProjectDep,
    SessionDep,
    SettingsDep,
    project_of,
)
from assistants_server.api.pagination import ListPage, ListQueryDep, page_of
from assistants_server.config import Settings
from assistants_server.db.models import RunRow, ThreadRow
from assistants_server.db.states import ACTIVE
from assistants_server.events.bus import EventBus
from assistants_server.events.sse import event_stream, snapshot_stream
from assistants_server.kit.errors import InvalidRequestError
from assistants_server.kit.uow import after_commit
from assistants_server.runs import service
from assistants_server.runs.limits import within_limits
from assistants_server.runs.outbox import Outbox
from assistants_server.runs.schemas import (
    CreateRunRequest,
    CreateThreadAndRunRequest,
    ModifyRunRequest,
    Run,
    RunStep,
    SubmitToolOutputsRequest,
)
from assistants_server.runs.service import Lease
from assistants_server.tools.registry import includes

if TYPE_CHECKING:
    from assistants_server.engine.executor import Executor

router = APIRouter(tags=["runs"])
RUNS = "/v1/threads/{thread_id}/runs"


def _bus(request: Request) -> EventBus:
    bus: EventBus = request.app.state.bus
    return bus


def _lease(request: Request, settings: Settings, stream: bool | None) -> Lease | None:
    """A run this process can start at once is leased to it as it is created: no claim round
    trip, and a streamed run's events are produced where its stream is served. Without room
    here, a plain run waits queued for any process's executor; a streamed one for this one."""
    executor = request.app.state.executor
    if executor is None:
        if stream and not _bus(request).shared:
            raise InvalidRequestError(
                "This server process does not drive runs (ASSISTANTS_EXECUTOR_ENABLED=false) "
                "and shares no event log (ASSISTANTS_REDIS_URL), so it cannot stream them. "
                "Send streaming requests to a process with the executor enabled, set "
                "ASSISTANTS_REDIS_URL, or omit 'stream' and poll the run.", param="stream")
        return None
    if stream or executor.has_room():
        return Lease(executor.owner, settings.lease_seconds)
    return None


async def _respond(
    request: Request, session: AsyncSession, settings: Settings, run: RunRow,
    lease: Lease | None, outbox: Outbox, stream: bool | None, after: int = 0,
    background: BackgroundTasks | None = None,
) -> Any:
    """Once the request commits: publish what it changed and set the run going; the run, or
    its event stream from `after` when the request asked for one. A run leased here and not
    streamed starts once the answer is sent (`background`): its first steps would hold the
    event loop before the answer went out."""
    executor = request.app.state.executor
    bus = _bus(request)

    async def start() -> None:
        await outbox.publish()
        if lease is None:  # every process's executor looks, this one's included
            await request.app.state.wakeups.wake("runs")
        elif background is not None and not stream:
            background.add_task(_adopt, executor, run)
        else:
            executor.adopt(run.id, run)

    after_commit(session, start)
    if not stream:
        return _run_json(run)
    return event_stream(bus, run.id, after, settings.stream_keepalive_seconds)


async def _adopt(executor: Executor, run: RunRow) -> None:  # async: on the loop, not a thread
    executor.adopt(run.id, run)


def _followable_here(request: Request, run: RunRow) -> bool:
    """Whether this process drives `run` (holds its lease), so its events reach this log."""
    executor = request.app.state.executor
    return executor is not None and run.lease_owner == executor.owner


def _started(bus: EventBus, run: RunRow, thread: ThreadRow | None = None) -> Outbox:
    outbox = Outbox(bus)
    if thread is not None:
        outbox.thread(run.id, thread)
    outbox.run(run, "thread.run.created")
    outbox.run(run)
    return outbox


async def _include(  # async: FastAPI would run a plain function on its thread pool
    brackets: Annotated[list[str] | None, Query(alias="include[]")] = None,
    plain: Annotated[list[str] | None, Query(alias="include")] = None,
) -> frozenset[str]:
    """`include[]` (as the SDK sends it, or plain `include`): the extra fields a step may
    carry (file_search results' content)."""
    include = [*(brackets or []), *(plain or [])]
    supported = includes()
    for value in include:
        if value not in supported:
            raise InvalidRequestError(
                f"Invalid value for 'include[]': '{value}'. Supported values are: "
                f"{', '.join(repr(v) for v in sorted(supported))}.", param="include",
                code="invalid_value")
    return frozenset(include)


IncludeDep = Annotated[frozenset[str], Depends(_include)]


@router.post(RUNS, response_model=Run)
async def create_run(
    thread_id: str, body: CreateRunRequest, session: SessionDep, settings: SettingsDep,
    models: ModelsDep, project: ProjectDep, request: Request, include: IncludeDep,
    background: BackgroundTasks,
) -> Any:
    if body.model is not None:
        await models.check_model(body.model)
    lease = _lease(request, settings, body.stream)
    run = await service.create_run(session, thread_id, body, settings.run_lifetime_seconds,
                                   lease, include)
    await within_limits(project, session, models, run)
    if body.stream:
        await _bus(request).watch(run.id)
    return await _respond(request, session, settings, run, lease, _started(_bus(request), run),
                          body.stream, background=background)


@router.post("/v1/threads/runs", response_model=Run)
async def create_thread_and_run(
    body: CreateThreadAndRunRequest, session: SessionDep, settings: SettingsDep,
    models: ModelsDep, project: ProjectDep, request: Request, background: BackgroundTasks,
) -> Any:
    if body.model is not None:
        await models.check_model(body.model)
    lease = _lease(request, settings, body.stream)
    thread, run = await service.create_thread_and_run(session, body,
                                                      settings.run_lifetime_seconds, lease)
    await within_limits(project, session, models, run)
    if body.stream:
        await _bus(request).watch(run.id)
    outbox = _started(_bus(request), run, thread)
    return await _respond(request, session, settings, run, lease, outbox, body.stream,
                          background=background)


@router.get(RUNS)
async def list_runs(thread_id: str, session: SessionDep, query: ListQueryDep) -> ListPage[Run]:
    rows, has_more = await service.list_runs(session, thread_id, query)
    return ListPage[Run](**page_of([Run.from_row(r) for r in rows], has_more))


async def retrieve_run(request: Request) -> Response:
    """The poll every run waits on, so a plain Starlette route: FastAPI's dependency and
    response-model machinery was 0.5 ms of its 1.4 ms, and it has no body to validate. Its
    `openai-poll-after-ms` tells the SDK's poll helpers how soon to ask again.

    A run this process is driving is answered when it moves on (completes, needs tool
    outputs, fails), or after ASSISTANTS_POLL_HOLD_MS: the SDK's helpers poll at once after
    creating a run, then sleep; held, that first poll sees a quick run's outcome rather than
    `in_progress` and a 200 ms sleep, and the server answers one poll fewer. The run is read
    once, after the wait: a driven run is queued or in progress until its drive stops."""
    params = request.path_params
    settings: Settings = request.app.state.settings
    executor = request.app.state.executor
    if executor is not None and settings.poll_hold_ms:  # returns at once for others' runs
        await executor.until_moved(params["run_id"], settings.poll_hold_ms / 1000)
    run = await _read_run(request, params["thread_id"], params["run_id"])
    return _run_json(run, {"openai-poll-after-ms": str(settings.poll_after_ms)})


def _run_json(run: RunRow, headers: dict[str, str] | None = None) -> Response:
    """The run as its JSON response, serialized once: returned as a model, FastAPI would
    validate it against the response model again before serializing it."""
    return Response(Run.from_row(run).model_dump_json(), media_type="application/json",
                    headers=headers)


router.add_route(RUNS + "/{run_id}", retrieve_run, methods=["GET"], include_in_schema=False)


async def _read_run(request: Request, thread_id: str, run_id: str) -> RunRow:
    async with request.app.state.read_sessionmaker(info=project_of(request)) as session:
        return await service.get_run(session, thread_id, run_id)


@router.post(RUNS + "/{run_id}")
async def modify_run(
    thread_id: str, run_id: str, body: ModifyRunRequest, session: SessionDep
) -> Run:
    return Run.from_row(await service.modify_run(session, thread_id, run_id, body))


@router.post(RUNS + "/{run_id}/cancel", response_model=Run)
async def cancel_run(
    thread_id: str, run_id: str, session: SessionDep, settings: SettingsDep, request: Request
) -> Any:
    outbox = Outbox(_bus(request))
    await _bus(request).refresh(run_id)
    run = await service.cancel_run(session, thread_id, run_id, outbox)
    return await _respond(request, session, settings, run, None, outbox, False)


@router.post(RUNS + "/{run_id}/submit_tool_outputs", response_model=Run)
async def submit_tool_outputs(
    thread_id: str, run_id: str, body: SubmitToolOutputsRequest, session: SessionDep,
    settings: SettingsDep, request: Request, background: BackgroundTasks,
) -> Any:
    """With `stream`, the stream continues the run: it starts after the events streamed so
    far (the tool_calls step completing, then the run queued again)."""
    lease = _lease(request, settings, body.stream)
    bus = _bus(request)
    watched_here = bool(body.stream) and await bus.watch(run_id)
    await bus.refresh(run_id)
    after = await bus.last_seq(run_id)
    outbox = Outbox(bus)
    try:
        run = await service.submit_tool_outputs(session, thread_id, run_id, body, outbox, lease)
    except BaseException:
        if watched_here:
            await bus.forget(run_id)
        raise
    return await _respond(request, session, settings, run, lease, outbox, body.stream, after,
                          background)


@router.get(RUNS + "/{run_id}/events")
async def run_events(
    thread_id: str, run_id: str, session: SessionDep, settings: SettingsDep, request: Request,
    after: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Any:
    """The run's event stream, from after `Last-Event-ID` (or `after`) to the next `done`:
    a client whose connection dropped gets the rest of what it was streaming. Without either,
    the run's latest stream from its start. A run nobody was streaming starts with its
    current state."""
    position = after
    if last_event_id is not None:
        if not last_event_id.strip().isdecimal():
            raise InvalidRequestError(
                f"Invalid 'Last-Event-ID' header: '{last_event_id}'. Send the `id:` of the "
                "last event received, a whole number.", param="Last-Event-ID")
        position = int(last_event_id)
    run = await service.get_run(session, thread_id, run_id)
    bus = _bus(request)
    if not bus.shared and run.status in ACTIVE and not _followable_here(request, run):
        # Another process drives it, and without ASSISTANTS_REDIS_URL only that process sees
        # its events: say where it stands, and end.
        return snapshot_stream(f"thread.run.{run.status}", Run.from_row(run).model_dump_json())
    if position is None:
        position = await bus.segment_start(run.id)  # the run's latest stream, from its start
    if await bus.watch(run.id, after=position) or position > await bus.last_seq(run.id):
        # Not logged (never streamed, or its log is gone: expired, or kept by a process that
        # stopped): where it stands now, numbered after the last event the client saw.
        position = await bus.last_seq(run.id)
        outbox = Outbox(bus)
        outbox.run(run)
        await outbox.publish()
    return event_stream(bus, run.id, position, settings.stream_keepalive_seconds)


@router.get(RUNS + "/{run_id}/steps")
async def list_run_steps(
    thread_id: str, run_id: str, session: SessionDep, query: ListQueryDep, include: IncludeDep
) -> ListPage[RunStep]:
    run, rows, has_more = await service.list_steps(session, thread_id, run_id, query)
    steps = [RunStep.from_row(r, run.expires_at, include) for r in rows]
    return ListPage[RunStep](**page_of(steps, has_more))


@router.get(RUNS + "/{run_id}/steps/{step_id}")
async def retrieve_run_step(
    thread_id: str, run_id: str, step_id: str, session: SessionDep, include: IncludeDep
) -> RunStep:
    run, step = await service.get_step(session, thread_id, run_id, step_id)
    return RunStep.from_row(step, run.expires_at, include)
