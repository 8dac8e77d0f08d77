"""Queued work wakes a worker in another process at once, not at its next poll: a run created
through one process is driven by a worker process, and files added to a vector store through one
process are indexed by a worker, through Redis or, without it, PostgreSQL's notifications; a run
that a stopping worker hands back is taken by another. The workers poll every 30 s here, so only
a wake-up explains work picked up within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from assistants_server.config import Settings
from assistants_server.db.migrate import run_blocking
from tests.fake_backend import Reply
from tests.runs.conftest import REDIS_URL
from tests.runs.test_process_death import HEADERS, _serve
from tests.test_cli import _free_port

POLL = {"poll_seconds": "30"}
QUICKLY = 5.0  # seconds: well within the poll, with room for a loaded machine


@pytest.fixture
def database() -> str:
    return "postgres"  # the processes share a server database


def _processes(settings: Settings, *roles: dict[str, str]) -> Iterator[list[str]]:
    """Servers on `settings`' database, each with its extra settings; their base URLs."""
    ports = [_free_port() for _ in roles]
    started: list[subprocess.Popen[str]] = []
    try:
        for port, extra in zip(ports, roles, strict=True):
            started.append(_serve(settings, port, **POLL, **extra))
        yield [f"http://127.0.0.1:{port}/v1" for port in ports]
    finally:
        for process in started:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture
def pg_only(settings: Settings) -> Iterator[list[str]]:
    """A worker, then a server that drives nothing, on PostgreSQL without Redis."""
    yield from _processes(settings, {"role": "worker"}, {"executor_enabled": "false"})


@pytest.fixture
def with_redis(settings: Settings, prefix: str) -> Iterator[list[str]]:
    """A worker, then an API process, sharing Redis."""
    redis = {"redis_url": REDIS_URL, "redis_prefix": prefix}
    yield from _processes(settings, {"role": "worker", **redis}, {"role": "api", **redis})


def _within(seconds: float, read: Callable[[], dict[str, Any]], done: str) -> dict[str, Any]:
    """`read()` once its status is `done`, which must come within `seconds`."""
    deadline = time.monotonic() + seconds
    while (state := read())["status"] != done:
        assert state["status"] in ("queued", "in_progress"), state
        assert time.monotonic() < deadline, f"still {state['status']} after {seconds} s"
        time.sleep(0.05)
    return state


def _queue_a_run(http: httpx.Client) -> tuple[dict[str, Any], str]:
    """A run of a new assistant on a new thread, polled (not streamed); it and its path."""
    assistant = http.post("/assistants", json={"model": "fake-model"}).json()
    run = http.post("/threads/runs", json={
        "assistant_id": assistant["id"],
        "thread": {"messages": [{"role": "user", "content": "hi"}]}}).json()
    return run, f"/threads/{run['thread_id']}/runs/{run['id']}"


def test_a_run_created_where_no_executor_runs_is_driven_by_a_worker_at_once_without_redis(
    pg_only: list[str],
) -> None:
    api = pg_only[1]
    with httpx.Client(base_url=api, headers=HEADERS, timeout=30) as http:
        _, path = _queue_a_run(http)
        _within(QUICKLY, lambda: dict(http.get(path).json()), "completed")


def _driving_pid(settings: Settings, run_id: str) -> int:
    """The process whose lease the run is under (its owner is host:pid:token)."""
    async def read() -> str:
        engine = create_async_engine(settings.resolved_database_url)
        try:
            async with engine.connect() as connection:
                return str((await connection.execute(text(
                    f'SELECT lease_owner FROM "{settings.database_schema}".runs '
                    "WHERE id = :id"), {"id": run_id})).scalar_one())
        finally:
            await engine.dispose()

    return int(run_blocking(read()).split(":")[1])


def test_a_run_handed_back_by_a_stopping_worker_is_taken_by_another_at_once_without_redis(
    settings: Settings, script: list[Any], sent: list[dict[str, Any]],
) -> None:
    script.extend([Reply(text="never heard", hang_seconds=30), Reply(text="answered anew")])
    worker = {"role": "worker", "shutdown_grace_seconds": "0"}
    processes = _processes(settings, worker, worker, {"executor_enabled": "false"})
    api = next(processes)[2]
    try:
        with httpx.Client(base_url=api, headers=HEADERS, timeout=30) as http:
            run, path = _queue_a_run(http)
            _within(QUICKLY, lambda: dict(http.get(path).json()), "in_progress")
            # No grace: the worker hands the turn back as it stops.
            os.kill(_driving_pid(settings, run["id"]), signal.SIGTERM)
            done = _within(QUICKLY, lambda: dict(http.get(path).json()), "completed")
        assert done["status"] == "completed" and len(sent) == 2
    finally:
        processes.close()


def _files_are_indexed_at_once(api: str) -> None:
    """A store created with a file, a file added, a file batch, a thread's store, a message's
    attachment: each indexed within seconds."""
    with httpx.Client(base_url=api, headers=HEADERS, timeout=30) as http:
        def upload(n: int) -> str:
            text = f"Report {n}: revenue was {n} million dollars.\n".encode()
            return str(http.post("/files", data={"purpose": "assistants"},
                                 files={"file": (f"report{n}.txt", text)}).json()["id"])

        first = upload(1)
        store = http.post("/vector_stores", json={"file_ids": [first]}).json()
        files = f"/vector_stores/{store['id']}/files"
        _within(QUICKLY, lambda: dict(http.get(f"{files}/{first}").json()), "completed")
        second = upload(2)
        http.post(files, json={"file_id": second}).raise_for_status()
        _within(QUICKLY, lambda: dict(http.get(f"{files}/{second}").json()), "completed")
        batch = http.post(f"/vector_stores/{store['id']}/file_batches",
                          json={"file_ids": [upload(3)]}).json()
        _within(QUICKLY, lambda: dict(http.get(
            f"/vector_stores/{store['id']}/file_batches/{batch['id']}").json()), "completed")
        # Stores the server makes itself: a thread's inline store, a message's attachment.
        thread = http.post("/threads", json={"tool_resources": {"file_search": {
            "vector_stores": [{"file_ids": [upload(4)]}]}}}).json()
        inline = thread["tool_resources"]["file_search"]["vector_store_ids"][0]
        _within(QUICKLY, lambda: dict(http.get(f"/vector_stores/{inline}").json()), "completed")
        attached = upload(5)
        http.post(f"/threads/{thread['id']}/messages", json={
            "role": "user", "content": "see the report", "attachments": [
                {"file_id": attached, "tools": [{"type": "file_search"}]}]}).raise_for_status()
        _within(QUICKLY, lambda: dict(http.get(
            f"/vector_stores/{inline}/files/{attached}").json()), "completed")


def test_files_added_through_an_api_process_are_indexed_by_a_worker_at_once(
    with_redis: list[str],
) -> None:
    _files_are_indexed_at_once(with_redis[1])


def test_files_added_through_a_server_are_indexed_by_a_worker_at_once_without_redis(
    pg_only: list[str],
) -> None:
    _files_are_indexed_at_once(pg_only[1])
