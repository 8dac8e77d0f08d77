"""A file attached to a message is searched by the run that follows: the search waits (bounded)
for the thread's and assistant's stores to finish indexing, as the hosted service did, and
when a file failed or the bound passed the model is told which files it could not search."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from assistants_server.db.models import RunRow
from assistants_server.vector_stores.ingest import Ingestor
from tests.fake_backend import Reply
from tests.runs.test_run_rules import _start, _wait
from tests.vector_stores.test_ingest import HeldIndex

NOTES = "Zorblax annual report: the Quasar vacuum cleaner drove third-quarter sales."


def _search(query: str) -> Reply:
    return Reply(tool_calls=[{"id": "call_fs1", "name": "file_search",
                              "arguments": json.dumps({"queries": [query]})}])


@asynccontextmanager
async def _held_ingestion(app: Any) -> AsyncIterator[HeldIndex]:
    """The app's indexing, but each file is held mid-way until released (a large file);
    released and stopped on the way out."""
    await app.state.ingestor.stop()
    held = HeldIndex(app.state.search_index)
    worker = Ingestor(app.state.sessionmaker, app.state.blobs, held, poll_seconds=0.05)
    await worker.start()
    try:
        yield held
    finally:
        held.release.set()
        await worker.stop()


async def _thread_with(client: httpx.AsyncClient, name: str, data: bytes) -> tuple[str, str]:
    """An assistant with file_search, and a thread whose message attaches the file."""
    file = (await client.post("/v1/files", data={"purpose": "assistants"},
                              files={"file": (name, data)})).json()
    assistant = (await client.post("/v1/assistants", json={
        "model": "fake-model", "tools": [{"type": "file_search"}]})).json()
    thread = (await client.post("/v1/threads", json={"messages": [{
        "role": "user", "content": "What drove sales?",
        "attachments": [{"file_id": file["id"], "tools": [{"type": "file_search"}]}]}]})).json()
    return assistant["id"], thread["id"]


async def _asked(sent: list[dict[str, Any]], count: int) -> None:
    deadline = time.monotonic() + 10
    while len(sent) < count:
        assert time.monotonic() < deadline, "the model was not asked"
        await asyncio.sleep(0.01)


def _tool_output(body: dict[str, Any]) -> str:
    return str(next(m["content"] for m in body["messages"] if m["role"] == "tool"))


async def test_the_search_waits_for_the_attached_file_being_indexed(
    app: Any, client: httpx.AsyncClient, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    async with _held_ingestion(app) as held:
        assistant_id, thread_id = await _thread_with(client, "notes.txt", NOTES.encode())
        script.extend([_search("Quasar vacuum"), Reply(text="The Quasar.")])
        run = await _start(client, thread_id, assistant_id)
        await _asked(sent, 1)  # the model asked for a search; the file is still being indexed
        await asyncio.sleep(0.5)
        waiting = (await client.get(f"/v1/threads/{thread_id}/runs/{run['id']}")).json()
        assert waiting["status"] == "in_progress" and len(sent) == 1
        held.release.set()  # indexing finishes: the search goes ahead
        await _wait(client, thread_id, run["id"], "completed")
    output = _tool_output(sent[1])
    assert "Quasar vacuum cleaner" in output and "could not be searched" not in output


async def test_a_file_that_failed_to_index_is_named_to_the_model(
    client: httpx.AsyncClient, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    assistant_id, thread_id = await _thread_with(client, "scan.bin", bytes(range(256)) * 8)
    script.extend([_search("sales"), Reply(text="I could not read the scan.")])
    run = await _start(client, thread_id, assistant_id)
    await _wait(client, thread_id, run["id"], "completed")
    output = _tool_output(sent[1])
    assert "scan.bin" in output and "could not be indexed" in output


class TestABoundedWait:
    @pytest.fixture
    def settings_overrides(self, backend: Any) -> dict[str, Any]:
        return {"backend_base_url": backend.url + "/v1", "file_search_wait_seconds": 0.5}

    async def test_past_the_bound_the_model_is_told_the_file_is_not_ready(
        self, app: Any, client: httpx.AsyncClient, script: list[Any],
        sent: list[dict[str, Any]],
    ) -> None:
        async with _held_ingestion(app):
            assistant_id, thread_id = await _thread_with(client, "notes.txt", NOTES.encode())
            script.extend([_search("Quasar"), Reply(text="Not indexed yet.")])
            run = await _start(client, thread_id, assistant_id)
            await _wait(client, thread_id, run["id"], "completed")
        output = _tool_output(sent[1])
        assert "notes.txt" in output and "still being indexed" in output


async def test_a_large_attachment_is_searched_by_the_run_that_follows_at_once(
    client: httpx.AsyncClient, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    """No held index: a file large enough (3 MB) that indexing it outlasts the first turn."""
    filler = " ".join(f"word{i % 5000}" for i in range(400_000))
    assistant_id, thread_id = await _thread_with(
        client, "big.txt", (filler + " The Quasar vacuum cleaner drove sales.").encode())
    script.extend([_search("Quasar vacuum cleaner"), Reply(text="The Quasar.")])
    run = await _start(client, thread_id, assistant_id)  # at once: the file is being indexed
    await _wait(client, thread_id, run["id"], "completed")
    output = _tool_output(sent[1])
    assert "Quasar vacuum cleaner drove sales" in output, output[:300]


async def test_a_run_waiting_for_indexing_is_cancelled_at_once(
    app: Any, client: httpx.AsyncClient, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    async with _held_ingestion(app):
        assistant_id, thread_id = await _thread_with(client, "notes.txt", NOTES.encode())
        script.extend([_search("Quasar"), Reply(text="never asked")])
        run = await _start(client, thread_id, assistant_id)
        await _asked(sent, 1)
        await asyncio.sleep(0.3)  # the search is waiting for the file
        started = time.monotonic()
        cancel = await client.post(f"/v1/threads/{thread_id}/runs/{run['id']}/cancel")
        assert cancel.status_code == 200, cancel.text
        assert cancel.json()["status"] == "cancelling"
        done = await _wait(client, thread_id, run["id"], "cancelled")
        assert time.monotonic() - started < 3 and done["cancelled_at"] is not None
    assert len(sent) == 1  # the model was not asked again


class TestAWaitLongerThanTheRunsLease:
    @pytest.fixture
    def settings_overrides(self, backend: Any) -> dict[str, Any]:
        return {"backend_base_url": backend.url + "/v1", "lease_seconds": 0.6}

    async def test_the_run_keeps_its_lease_while_its_search_waits(
        self, app: Any, client: httpx.AsyncClient, script: list[Any],
        sent: list[dict[str, Any]],
    ) -> None:
        """The process renews its runs' leases on its own: a search waiting several leases
        long is not taken for a dead process's run by another process's sweeper."""
        async with _held_ingestion(app) as held:
            assistant_id, thread_id = await _thread_with(client, "notes.txt", NOTES.encode())
            script.extend([_search("Quasar vacuum"), Reply(text="The Quasar.")])
            run = await _start(client, thread_id, assistant_id)
            await _asked(sent, 1)
            await asyncio.sleep(2.5)  # four leases
            waiting = (await client.get(f"/v1/threads/{thread_id}/runs/{run['id']}")).json()
            assert waiting["status"] == "in_progress" and len(sent) == 1
            async with app.state.sessionmaker() as session:
                lease = await session.scalar(
                    select(RunRow.lease_expires_at).where(RunRow.id == run["id"]))
            assert lease is not None and lease > time.time()  # no sweeper may take it
            held.release.set()
            await _wait(client, thread_id, run["id"], "completed")
        assert "Quasar vacuum cleaner" in _tool_output(sent[1])
