"""Run leases across executors: a run driven for longer than its lease keeps it (renewed), so
another process neither claims it nor fails it as orphaned; executors racing for queued runs
never drive one run twice; a run leased at creation whose request committed after the lease ran
out is driven once, here or by the process that claimed it meanwhile."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from assistants_server.db.models import RunRow
from assistants_server.engine.executor import Executor
from tests.conftest import LiveServer
from tests.fake_backend import Reply
from tests.runs.test_run_rules import _setup, _start, _wait

LEASE = 0.9


@pytest.fixture
def settings_overrides(backend: LiveServer) -> dict[str, Any]:
    return {"backend_base_url": backend.url + "/v1", "lease_seconds": LEASE}


def _other_process(app: FastAPI) -> Executor:
    """An executor as another process would run it: its own owner, the same database."""
    return Executor(app.state.sessionmaker, app.state.executor.backend,
                    lease_seconds=LEASE, bus=app.state.bus)


async def _lease(app: FastAPI, run_id: str) -> tuple[str, str | None, float | None]:
    async with app.state.sessionmaker() as session:
        row = (await session.execute(select(
            RunRow.status, RunRow.lease_owner, RunRow.lease_expires_at).where(
            RunRow.id == run_id))).one()
        return str(row[0]), row[1], row[2]


async def _elsewhere_meanwhile(app: FastAPI, others: list[Executor], seconds: float,
                               run_ids: list[str]) -> None:
    """For `seconds`, other processes sweep and claim; the runs stay this process's."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for other in others:
            await other.sweep()
            assert await other.claim() == []
        for run_id in run_ids:
            status, owner, expires = await _lease(app, run_id)
            if status in ("in_progress", "queued"):
                assert owner not in {other.owner for other in others}
                assert expires is not None and expires > time.time() - 0.05
        await asyncio.sleep(0.1)


async def test_a_run_driven_longer_than_its_lease_keeps_it(
    app: FastAPI, client: httpx.AsyncClient, script: list[Any]
) -> None:
    script.append(Reply(text="a slow answer", hang_seconds=4 * LEASE))
    assistant_id, thread_id = await _setup(client)
    run = await _start(client, thread_id, assistant_id)
    await _wait(client, thread_id, run["id"], "in_progress")
    assert (await _lease(app, run["id"]))[1] == app.state.executor.owner
    other = _other_process(app)
    await _elsewhere_meanwhile(app, [other], 3 * LEASE, [run["id"]])
    done = await _wait(client, thread_id, run["id"], "completed", "failed")
    assert done["status"] == "completed" and done["last_error"] is None
    messages = (await client.get(f"/v1/threads/{thread_id}/messages")).json()["data"]
    assert messages[0]["content"][0]["text"]["value"] == "a slow answer"
    await other.stop()


async def test_racing_executors_never_drive_one_run(
    app: FastAPI, client: httpx.AsyncClient, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    app.state.executor.concurrency = 0  # no room here: the runs wait queued for any process
    runs: list[tuple[str, str]] = []
    for _ in range(6):
        script.append(Reply(text="ok", hang_seconds=2 * LEASE))
        assistant_id, thread_id = await _setup(client)
        runs.append((thread_id, (await _start(client, thread_id, assistant_id))["id"]))
    first, second = _other_process(app), _other_process(app)
    claimed = await asyncio.gather(first.claim(), second.claim())
    assert sorted(claimed[0] + claimed[1]) == sorted(run_id for _, run_id in runs)
    assert not set(claimed[0]) & set(claimed[1])
    third = _other_process(app)
    await _elsewhere_meanwhile(app, [third], 2 * LEASE, [run_id for _, run_id in runs])
    for thread_id, run_id in runs:
        done = await _wait(client, thread_id, run_id, "completed", "failed")
        assert done["status"] == "completed", done["last_error"]
    assert len(sent) == len(runs)  # each run asked the model once
    for executor in (first, second, third):
        await executor.stop()


async def _queued(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, str]:
    """A run left queued: no room in this process's executor, and none elsewhere."""
    app.state.executor.concurrency = 0
    assistant_id, thread_id = await _setup(client)
    return thread_id, (await _start(client, thread_id, assistant_id))["id"]


async def _granted(app: FastAPI, run_id: str, owner: str, expires: float) -> RunRow:
    """The run as the request that leased it to `owner` at creation committed it, its lease
    ending at `expires` (a request that took longer than the lease to commit)."""
    async with app.state.sessionmaker() as session:
        run = await session.scalar(select(RunRow).where(RunRow.id == run_id))
        assert run is not None and run.status == "queued"
        run.lease_owner, run.lease_expires_at = owner, expires
        await session.commit()
        await session.refresh(run)
        return run


async def test_a_run_taken_up_after_its_lease_ran_out_is_driven_once(
    app: FastAPI, client: httpx.AsyncClient, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    script.append(Reply(text="once"))
    executor = app.state.executor
    thread_id, run_id = await _queued(app, client)
    known = await _granted(app, run_id, executor.owner, time.time() - 0.1)
    executor.concurrency = 8
    assert await executor.claim() == []  # this process's to take up, not to claim again
    executor.adopt(run_id, known)
    done = await _wait(client, thread_id, run_id, "completed", "failed")
    assert done["status"] == "completed", done["last_error"]
    assert len(sent) == 1


async def test_a_run_claimed_elsewhere_before_it_was_taken_up_is_driven_there(
    app: FastAPI, client: httpx.AsyncClient, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    script.append(Reply(text="there", hang_seconds=0.5))
    executor, other = app.state.executor, _other_process(app)
    thread_id, run_id = await _queued(app, client)
    known = await _granted(app, run_id, executor.owner, time.time() - 0.1)
    assert await other.claim() == [run_id]
    executor.concurrency = 8
    executor.adopt(run_id, known)
    done = await _wait(client, thread_id, run_id, "completed", "failed")
    assert done["status"] == "completed", done["last_error"]
    assert len(sent) == 1
    assert run_id not in executor.tasks and not executor.leases.holds(run_id)
    await other.stop()


async def test_a_run_granted_here_and_never_taken_up_is_claimed_after_another_lease(
    app: FastAPI, client: httpx.AsyncClient, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    script.append(Reply(text="late"))
    executor = app.state.executor
    thread_id, run_id = await _queued(app, client)
    await _granted(app, run_id, executor.owner, time.time() - LEASE - 0.1)
    executor.concurrency = 8
    assert await executor.claim() == [run_id]
    done = await _wait(client, thread_id, run_id, "completed", "failed")
    assert done["status"] == "completed", done["last_error"]
    assert len(sent) == 1
