"""HTTP endpoints of runs and run steps, and of create-thread-and-run (`POST /v1/threads/runs`).

Writes commit when the endpoint returns; the executor is woken by a background task, which
runs after the commit, so it always finds the run it is told about.
"""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request, Response

from assistants_server.api.deps import SessionDep, SettingsDep
from assistants_server.api.pagination import ListPage, ListQueryDep, page_of
from assistants_server.runs import service
from assistants_server.runs.schemas import (
    CreateRunRequest,
    CreateThreadAndRunRequest,
    ModifyRunRequest,
    Run,
    RunStep,
    SubmitToolOutputsRequest,
)

router = APIRouter(tags=["runs"])
RUNS = "/v1/threads/{thread_id}/runs"


def _wake(request: Request, tasks: BackgroundTasks) -> None:
    executor = getattr(request.app.state, "executor", None)
    if executor is not None:
        tasks.add_task(executor.notify)


def _poll_hint(response: Response, settings: SettingsDep) -> None:
    response.headers["openai-poll-after-ms"] = str(settings.poll_after_ms)


@router.post(RUNS)
async def create_run(
    thread_id: str, body: CreateRunRequest, session: SessionDep, settings: SettingsDep,
    request: Request, tasks: BackgroundTasks,
) -> Run:
    run = await service.create_run(session, thread_id, body, settings.models)
    _wake(request, tasks)
    return Run.from_row(run)


@router.post("/v1/threads/runs")
async def create_thread_and_run(
    body: CreateThreadAndRunRequest, session: SessionDep, settings: SettingsDep,
    request: Request, tasks: BackgroundTasks,
) -> Run:
    run = await service.create_thread_and_run(session, body, settings.models)
    _wake(request, tasks)
    return Run.from_row(run)


@router.get(RUNS)
async def list_runs(thread_id: str, session: SessionDep, query: ListQueryDep) -> ListPage[Run]:
    rows, has_more = await service.list_runs(session, thread_id, query)
    return ListPage[Run](**page_of([Run.from_row(r) for r in rows], has_more))


@router.get(RUNS + "/{run_id}")
async def retrieve_run(
    thread_id: str, run_id: str, session: SessionDep, settings: SettingsDep, response: Response
) -> Run:
    run = await service.get_run(session, thread_id, run_id)
    _poll_hint(response, settings)
    return Run.from_row(run)


@router.post(RUNS + "/{run_id}")
async def modify_run(
    thread_id: str, run_id: str, body: ModifyRunRequest, session: SessionDep
) -> Run:
    return Run.from_row(await service.modify_run(session, thread_id, run_id, body))


@router.post(RUNS + "/{run_id}/cancel")
async def cancel_run(
    thread_id: str, run_id: str, session: SessionDep, request: Request, tasks: BackgroundTasks
) -> Run:
    run = await service.cancel_run(session, thread_id, run_id)
    _wake(request, tasks)
    return Run.from_row(run)


@router.post(RUNS + "/{run_id}/submit_tool_outputs")
async def submit_tool_outputs(
    thread_id: str, run_id: str, body: SubmitToolOutputsRequest, session: SessionDep,
    request: Request, tasks: BackgroundTasks,
) -> Run:
    run = await service.submit_tool_outputs(session, thread_id, run_id, body)
    _wake(request, tasks)
    return Run.from_row(run)


@router.get(RUNS + "/{run_id}/steps")
async def list_run_steps(
    thread_id: str, run_id: str, session: SessionDep, query: ListQueryDep
) -> ListPage[RunStep]:
    run, rows, has_more = await service.list_steps(session, thread_id, run_id, query)
    steps = [RunStep.from_row(r, run.expires_at) for r in rows]
    return ListPage[RunStep](**page_of(steps, has_more))


@router.get(RUNS + "/{run_id}/steps/{step_id}")
async def retrieve_run_step(
    thread_id: str, run_id: str, step_id: str, session: SessionDep
) -> RunStep:
    run, step = await service.get_step(session, thread_id, run_id, step_id)
    return RunStep.from_row(step, run.expires_at)
