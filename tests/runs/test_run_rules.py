"""Run rules in-process with the real executor and a fake backend: one active run per thread,
cancel in every state, tool-output checks, expiry, a dead process, token limits, truncation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from assistants_server.db.models import MessageRow, RunRow, RunStepRow
from assistants_server.db.tenancy import DEFAULT_PROJECT
from assistants_server.engine import runner
from tests.fake_backend import Reply

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


async def _setup(client: httpx.AsyncClient, **assistant: Any) -> tuple[str, str]:
    body = {"model": "fake-model", **assistant}
    assistant_id = (await client.post("/v1/assistants", json=body)).json()["id"]
    thread = await client.post("/v1/threads", json={
        "messages": [{"role": "user", "content": "hello"}]})
    return assistant_id, thread.json()["id"]


async def _start(client: httpx.AsyncClient, thread_id: str, assistant_id: str,
                 **extra: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/threads/{thread_id}/runs",
                                 json={"assistant_id": assistant_id, **extra})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _wait(client: httpx.AsyncClient, thread_id: str, run_id: str,
                *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        run = (await client.get(f"/v1/threads/{thread_id}/runs/{run_id}")).json()
        if run["status"] in statuses:
            return dict(run)
        assert time.monotonic() < deadline, f"run stuck in {run['status']}"
        await asyncio.sleep(0.02)


async def test_a_run_on_a_missing_thread_names_the_thread(client: httpx.AsyncClient) -> None:
    assistant_id, thread_id = await _setup(client)
    for assistant in (assistant_id, "asst_missing"):  # a missing thread is named first
        response = await client.post("/v1/threads/thread_missing/runs",
                                     json={"assistant_id": assistant})
        assert response.status_code == 404, response.text
        assert response.json()["error"]["message"] == \
            "No thread found with id 'thread_missing'."
    response = await client.post(f"/v1/threads/{thread_id}/runs",
                                 json={"assistant_id": "asst_missing"})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No assistant found with id 'asst_missing'."
    await client.delete(f"/v1/threads/{thread_id}")
    response = await client.post(f"/v1/threads/{thread_id}/runs",
                                 json={"assistant_id": assistant_id, "stream": True})
    assert response.status_code == 404  # before any stream starts
    assert response.json()["error"]["message"] == f"No thread found with id '{thread_id}'."


async def test_only_one_of_fifty_concurrent_runs_wins(client: httpx.AsyncClient,
                                                      script: list[Any]) -> None:
    # The winner waits for tool outputs, so it stays active however long the others take to
    # arrive (a run that finished would rightly let a later one start).
    script.append(Reply(tool_calls=[{"id": "call_1", "name": "lookup", "arguments": "{}"}]))
    assistant_id, thread_id = await _setup(client, tools=[TOOL])
    responses = await asyncio.gather(*(client.post(
        f"/v1/threads/{thread_id}/runs", json={"assistant_id": assistant_id})
        for _ in range(50)))
    won = [r for r in responses if r.status_code == 200]
    assert len(won) == 1
    run_id = won[0].json()["id"]
    for lost in (r for r in responses if r.status_code != 200):
        assert lost.status_code == 400
        assert lost.json()["error"]["message"] == (
            f"Thread {thread_id} already has an active run {run_id}.")


async def test_messages_are_refused_while_a_run_is_active(client: httpx.AsyncClient,
                                                          script: list[Any]) -> None:
    script.append(Reply(tool_calls=[{"id": "call_1", "name": "lookup", "arguments": "{}"}]))
    assistant_id, thread_id = await _setup(client, tools=[TOOL])
    run = await _start(client, thread_id, assistant_id)
    await _wait(client, thread_id, run["id"], "requires_action")
    response = await client.post(f"/v1/threads/{thread_id}/messages",
                                 json={"role": "user", "content": "more"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        f"Can't add messages to {thread_id} while a run {run['id']} is active.")


async def test_cancel_while_waiting_for_tool_outputs(client: httpx.AsyncClient,
                                                     script: list[Any]) -> None:
    script.append(Reply(tool_calls=[{"id": "call_1", "name": "lookup", "arguments": "{}"}]))
    assistant_id, thread_id = await _setup(client, tools=[TOOL])
    run = await _start(client, thread_id, assistant_id)
    await _wait(client, thread_id, run["id"], "requires_action")
    cancelled = (await client.post(f"/v1/threads/{thread_id}/runs/{run['id']}/cancel")).json()
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"]
    assert cancelled["required_action"] is None and cancelled["expires_at"] is None
    steps = (await client.get(f"/v1/threads/{thread_id}/runs/{run['id']}/steps")).json()
    assert [s["status"] for s in steps["data"]] == ["cancelled"]
    again = await client.post(f"/v1/threads/{thread_id}/runs/{run['id']}/cancel")
    assert again.json()["error"]["message"] == "Cannot cancel run with status 'cancelled'."


async def test_cancel_while_the_model_is_answering(client: httpx.AsyncClient,
                                                   script: list[Any]) -> None:
    script.append(Reply(text="slow", hang_seconds=5))
    assistant_id, thread_id = await _setup(client)
    run = await _start(client, thread_id, assistant_id)
    await _wait(client, thread_id, run["id"], "in_progress")
    cancelling = (await client.post(f"/v1/threads/{thread_id}/runs/{run['id']}/cancel")).json()
    assert cancelling["status"] == "cancelling"
    done = await _wait(client, thread_id, run["id"], "cancelled")
    assert done["cancelled_at"] is not None
    # A cancelled run frees the thread.
    assert (await client.post(f"/v1/threads/{thread_id}/messages", json={
        "role": "user", "content": "next"})).status_code == 200


async def test_cancel_committed_as_the_answer_is_being_written_wins(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer's write does not re-read the run: the version column must turn a cancel
    committed just before it into a retry that ends the run cancelled, not completed."""
    record = runner.record
    thread_id = run_id = ""
    attempts = 0

    async def cancel_then_record(*args: Any, **kwargs: Any) -> bool:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            response = await client.post(f"/v1/threads/{thread_id}/runs/{run_id}/cancel")
            assert response.json().get("status") == "cancelling", response.text
        return await record(*args, **kwargs)

    monkeypatch.setattr(runner, "record", cancel_then_record)
    assistant_id, thread_id = await _setup(client)
    run_id = (await _start(client, thread_id, assistant_id))["id"]
    done = await _wait(client, thread_id, run_id, "cancelled", "completed")
    assert done["status"] == "cancelled"
    messages = (await client.get(f"/v1/threads/{thread_id}/messages")).json()["data"]
    assert [(m["role"], m["status"]) for m in messages] == [
        ("assistant", "incomplete"), ("user", "completed")]
    steps = (await client.get(f"/v1/threads/{thread_id}/runs/{run_id}/steps")).json()["data"]
    assert [step["status"] for step in steps] == ["cancelled"]
    assert attempts == 2  # the first write failed on the stale version, the retry read afresh


class TestWithoutExecutor:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"executor_enabled": False}

    async def test_an_unknown_include_value_is_refused_naming_the_supported_one(
        self, client: httpx.AsyncClient
    ) -> None:
        assistant_id, thread_id = await _setup(client)
        response = await client.post(
            f"/v1/threads/{thread_id}/runs", params={"include[]": "step_details.everything"},
            json={"assistant_id": assistant_id})
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["param"], error["code"]) == ("include", "invalid_value")
        assert "file_search.results[*].content" in error["message"]
        runs = (await client.get(f"/v1/threads/{thread_id}/runs")).json()["data"]
        assert runs == []  # refused before anything was written

    async def test_cancel_a_queued_run_is_immediate(self, client: httpx.AsyncClient) -> None:
        assistant_id, thread_id = await _setup(client)
        run = await _start(client, thread_id, assistant_id)
        assert run["status"] == "queued" and run["expires_at"] == run["created_at"] + 600
        cancelled = await client.post(f"/v1/threads/{thread_id}/runs/{run['id']}/cancel")
        assert cancelled.json()["status"] == "cancelled"

    async def test_tool_outputs_are_refused_outside_requires_action(
        self, client: httpx.AsyncClient
    ) -> None:
        assistant_id, thread_id = await _setup(client)
        run = await _start(client, thread_id, assistant_id)
        response = await client.post(
            f"/v1/threads/{thread_id}/runs/{run['id']}/submit_tool_outputs",
            json={"tool_outputs": [{"tool_call_id": "call_x", "output": "1"}]})
        assert response.json()["error"]["message"] == (
            'Runs in status "queued" do not accept tool outputs.')


async def test_incomplete_tool_outputs_name_what_is_missing(client: httpx.AsyncClient,
                                                            script: list[Any]) -> None:
    script.append(Reply(tool_calls=[{"id": "call_a", "name": "lookup", "arguments": "{}"},
                                    {"id": "call_b", "name": "lookup", "arguments": "{}"}]))
    assistant_id, thread_id = await _setup(client, tools=[TOOL])
    run = await _start(client, thread_id, assistant_id)
    await _wait(client, thread_id, run["id"], "requires_action")
    url = f"/v1/threads/{thread_id}/runs/{run['id']}/submit_tool_outputs"
    missing = await client.post(url, json={"tool_outputs": [
        {"tool_call_id": "call_a", "output": "1"}]})
    assert missing.status_code == 400 and "Missing: call_b" in missing.json()["error"]["message"]
    unknown = await client.post(url, json={"tool_outputs": [
        {"tool_call_id": "call_a"}, {"tool_call_id": "call_b"}, {"tool_call_id": "call_z"}]})
    assert "call_z" in unknown.json()["error"]["message"]


async def test_overdue_run_waiting_for_outputs_expires(app: FastAPI, client: httpx.AsyncClient,
                                                       script: list[Any]) -> None:
    script.append(Reply(tool_calls=[{"id": "call_a", "name": "lookup", "arguments": "{}"}]))
    assistant_id, thread_id = await _setup(client, tools=[TOOL])
    run = await _start(client, thread_id, assistant_id)
    await _wait(client, thread_id, run["id"], "requires_action")
    async with app.state.sessionmaker() as session:
        await session.execute(update(RunRow).where(RunRow.id == run["id"]).values(
            expires_at=int(time.time()) - 1))
        await session.commit()
    await app.state.executor.sweep()
    expired = (await client.get(f"/v1/threads/{thread_id}/runs/{run['id']}")).json()
    assert expired["status"] == "expired" and expired["expires_at"] is None
    late = await client.post(f"/v1/threads/{thread_id}/runs/{run['id']}/submit_tool_outputs",
                             json={"tool_outputs": [{"tool_call_id": "call_a"}]})
    assert late.json()["error"]["message"] == (
        'Runs in status "expired" do not accept tool outputs.')


async def _orphan(app: FastAPI, client: httpx.AsyncClient, **run: Any) -> str:
    """A run in progress whose process died (its lease ran out), with a half-written message;
    the sweeper has looked. The thread's id."""
    assistant_id, thread_id = await _setup(client)
    async with app.state.sessionmaker() as session:
        session.add(RunRow(project_id=DEFAULT_PROJECT, 
            id="run_orphan00000000000000000", created_at=1, thread_id=thread_id,
            active_thread_id=thread_id, assistant_id=assistant_id, status="in_progress",
            started_at=1, expires_at=int(time.time()) + 600, model="fake-model",
            instructions="", tools=[], tool_resources={}, truncation_strategy={},
            response_format="auto", tool_choice="auto", parallel_tool_calls=True,
            metadata_={}, lease_owner="gone:1:dead", lease_expires_at=time.time() - 1, **run))
        session.add(MessageRow(project_id=DEFAULT_PROJECT, 
            id="msg_halfwritten00000000000", created_at=1, thread_id=thread_id,
            role="assistant", content=[], status="in_progress", attachments=[], metadata_={},
            run_id="run_orphan00000000000000000"))
        await session.commit()
    await app.state.executor.sweep()
    return thread_id


@pytest.mark.parametrize("run", [{"streamed": True}, {"retries": 2}],
                         ids=["streamed", "retried twice"])
async def test_run_of_a_dead_process_is_failed_and_its_message_closed(
    app: FastAPI, client: httpx.AsyncClient, run: dict[str, Any]
) -> None:
    thread_id = await _orphan(app, client, **run)
    run = (await client.get(f"/v1/threads/{thread_id}/runs/run_orphan00000000000000000")).json()
    assert run["status"] == "failed" and run["last_error"]["code"] == "server_error"
    message = (await client.get(
        f"/v1/threads/{thread_id}/messages/msg_halfwritten00000000000")).json()
    assert message["status"] == "incomplete"
    assert message["incomplete_details"] == {"reason": "run_failed"}


async def test_run_nobody_streamed_of_a_dead_process_is_queued_again(
    app: FastAPI, client: httpx.AsyncClient, script: list[Any]
) -> None:
    """No token of its lost turn reached anyone: the turn is dropped and the run driven again."""
    script.append(Reply(text="Answered after all."))
    thread_id = await _orphan(app, client)
    run = await _wait(client, thread_id, "run_orphan00000000000000000", "completed")
    assert run["last_error"] is None
    messages = (await client.get(f"/v1/threads/{thread_id}/messages")).json()["data"]
    assert [(m["role"], m["status"]) for m in messages] == [
        ("assistant", "completed"), ("user", "completed")]
    async with app.state.sessionmaker() as session:
        retries = await session.scalar(select(RunRow.retries).where(
            RunRow.id == "run_orphan00000000000000000"))
    assert retries == 1


async def test_max_completion_tokens_makes_the_run_incomplete(
    client: httpx.AsyncClient, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    script.append(Reply(text="cut short", finish="length"))
    assistant_id, thread_id = await _setup(client)
    run = await _start(client, thread_id, assistant_id, max_completion_tokens=300)
    done = await _wait(client, thread_id, run["id"], "incomplete")
    assert done["incomplete_details"] == {"reason": "max_completion_tokens"}
    assert sent[-1]["max_completion_tokens"] == 300 and "max_tokens" not in sent[-1]
    messages = (await client.get(f"/v1/threads/{thread_id}/messages",
                                 params={"run_id": run["id"]})).json()["data"]
    assert messages[0]["status"] == "incomplete"
    assert messages[0]["incomplete_details"] == {"reason": "max_tokens"}


async def test_prompt_that_cannot_fit_max_prompt_tokens_is_incomplete(
    client: httpx.AsyncClient, sent: list[dict[str, Any]]
) -> None:
    assistant_id, thread_id = await _setup(client)
    await client.post(f"/v1/threads/{thread_id}/messages", json={
        "role": "user", "content": "word " * 2000})
    run = await _start(client, thread_id, assistant_id, max_prompt_tokens=256)
    done = await _wait(client, thread_id, run["id"], "incomplete")
    assert done["incomplete_details"] == {"reason": "max_prompt_tokens"}
    assert sent == []


async def test_auto_truncation_keeps_the_newest_messages_that_fit(
    client: httpx.AsyncClient, sent: list[dict[str, Any]]
) -> None:
    assistant_id, thread_id = await _setup(client)
    for i in range(120):
        await client.post(f"/v1/threads/{thread_id}/messages", json={
            "role": "user", "content": f"message {i} " + "pad " * 20})
    run = await _start(client, thread_id, assistant_id, max_prompt_tokens=600)
    await _wait(client, thread_id, run["id"], "completed")
    contents = [m["content"] for m in sent[-1]["messages"]]
    assert contents[-1].startswith("message 119 ")
    assert 5 < len(contents) < 40
    numbers = [int(c.split()[1]) for c in contents]
    assert numbers == list(range(120 - len(numbers), 120))


async def test_last_messages_truncation_sends_only_the_newest(
    client: httpx.AsyncClient, sent: list[dict[str, Any]]
) -> None:
    assistant_id, thread_id = await _setup(client, instructions="Be brief.")
    await client.post(f"/v1/threads/{thread_id}/messages", json={"role": "user", "content": "b"})
    run = await _start(client, thread_id, assistant_id, additional_instructions="Use French.",
                       truncation_strategy={"type": "last_messages", "last_messages": 1})
    await _wait(client, thread_id, run["id"], "completed")
    assert sent[-1]["messages"] == [
        {"role": "system", "content": "Be brief. Use French."},
        {"role": "user", "content": "b"}]


@pytest.mark.parametrize(("replies", "code"), [
    ([Reply(status=500)] * 3, "server_error"),
    ([Reply(status=429, headers={"retry-after": "0"})] * 3, "rate_limit_exceeded"),
    ([Reply(garbled=True)], "server_error"),
])
async def test_backend_failures_fail_the_run_with_the_right_code(
    client: httpx.AsyncClient, script: list[Any], replies: list[Reply], code: str
) -> None:
    script.extend(replies)
    assistant_id, thread_id = await _setup(client)
    run = await _start(client, thread_id, assistant_id)
    failed = await _wait(client, thread_id, run["id"], "failed")
    assert failed["last_error"]["code"] == code


async def test_run_retrieval_tells_pollers_how_often_to_ask(client: httpx.AsyncClient) -> None:
    assistant_id, thread_id = await _setup(client)
    run = await _start(client, thread_id, assistant_id)
    response = await client.get(f"/v1/threads/{thread_id}/runs/{run['id']}")
    assert int(response.headers["openai-poll-after-ms"]) == 200


async def _first_poll(client: httpx.AsyncClient, script: list[Any],
                      reply: Reply) -> tuple[str, str, dict[str, Any], float]:
    """A run the model answers with `reply`, polled once right after its creation, as the
    SDK's helpers do: its thread and id, what the poll said, and how long it took."""
    script.append(reply)
    assistant_id, thread_id = await _setup(client)
    run = await _start(client, thread_id, assistant_id)
    started = time.monotonic()
    polled = (await client.get(f"/v1/threads/{thread_id}/runs/{run['id']}")).json()
    return thread_id, run["id"], polled, time.monotonic() - started


class TestWithALongHold:
    """A hold far longer than the answer takes, so a loaded machine cannot make the run
    outlast it."""

    @pytest.fixture
    def settings_overrides(self, backend: Any) -> dict[str, Any]:
        return {"backend_base_url": backend.url + "/v1", "poll_hold_ms": 3000}

    async def test_a_poll_is_answered_as_soon_as_the_run_moves_on(
            self, client: httpx.AsyncClient, script: list[Any]) -> None:
        _, _, polled, took = await _first_poll(client, script,
                                               Reply(text="in a moment", hang_seconds=0.15))
        assert polled["status"] == "completed"  # the outcome, not in_progress
        assert 0.1 < took < 1.5  # when the run ended, not when the 3 s hold ran out


async def test_a_poll_is_held_no_longer_than_poll_hold_ms(
        client: httpx.AsyncClient, script: list[Any]) -> None:
    thread_id, run_id, polled, took = await _first_poll(client, script,
                                                        Reply(text="slow", hang_seconds=3))
    assert polled["status"] in ("queued", "in_progress")
    assert 0.15 < took < 1.0  # the default hold: 200 ms
    await client.post(f"/v1/threads/{thread_id}/runs/{run_id}/cancel")
    await _wait(client, thread_id, run_id, "cancelled")


async def test_a_poll_of_a_run_that_is_not_moving_is_answered_at_once(
        client: httpx.AsyncClient, script: list[Any]) -> None:
    script.append(Reply(tool_calls=[{"id": "call_1", "name": "lookup", "arguments": "{}"}]))
    assistant_id, thread_id = await _setup(client, tools=[TOOL])
    run = await _start(client, thread_id, assistant_id)
    await _wait(client, thread_id, run["id"], "requires_action")
    started = time.monotonic()
    polled = (await client.get(f"/v1/threads/{thread_id}/runs/{run['id']}")).json()
    assert polled["status"] == "requires_action" and time.monotonic() - started < 0.1


async def test_deleting_a_thread_deletes_its_runs_and_steps(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    assistant_id, thread_id = await _setup(client)
    run = await _start(client, thread_id, assistant_id)
    await _wait(client, thread_id, run["id"], "completed")
    await client.delete(f"/v1/threads/{thread_id}")
    async with app.state.sessionmaker() as session:
        assert list(await session.scalars(select(RunRow.id))) == []
        assert list(await session.scalars(select(RunStepRow.id))) == []


class TestHangingBackend:
    @pytest.fixture
    def settings_overrides(self, backend: Any) -> dict[str, Any]:
        return {"backend_base_url": backend.url + "/v1", "backend_timeout_seconds": 0.3}

    async def test_a_backend_that_hangs_fails_the_run_as_timed_out(
        self, client: httpx.AsyncClient, script: list[Any]
    ) -> None:
        script.extend([Reply(text="late", hang_seconds=5) for _ in range(3)])
        assistant_id, thread_id = await _setup(client)
        run = await _start(client, thread_id, assistant_id)
        failed = await _wait(client, thread_id, run["id"], "failed")
        assert failed["last_error"]["code"] == "server_error"
        assert "timed out" in failed["last_error"]["message"]
