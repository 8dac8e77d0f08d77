"""A run's context is built from the counts stored with the messages: on a long thread it reads
the costs of about as many messages as fit and the content of exactly those kept, and keeps
the same messages as counting each one would (`auto` and `last_messages` truncation)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistants_server.db.models import MessageRow
from assistants_server.db.tenancy import DEFAULT_PROJECT
from assistants_server.engine.history import FIRST_PAGE
from assistants_server.tokens import REPLY_PRIMING, count_message, message_tokens

THREAD_LENGTH = 300


def _text(i: int) -> str:
    return f"message {i} " + "pad " * (i % 37)


@dataclass
class Reads:
    """Statements on the messages table while a run was driven."""

    costs: list[int] = field(default_factory=list)  # rows asked for, per page of counts
    contents: list[int] = field(default_factory=list)  # rows asked for, per content read
    updates: int = 0

    @property
    def cost_rows(self) -> int:
        return sum(self.costs)

    @property
    def content_rows(self) -> int:
        return sum(self.contents)


@contextmanager
def _watch(app: FastAPI) -> Iterator[Reads]:
    reads = Reads()

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
             _many: bool) -> None:
        if "FROM messages" in statement and "messages.token_count" in statement:
            reads.costs.append(_limit(statement, parameters))
        elif "FROM messages" in statement and "messages.content" in statement:
            # the rows asked for (the other parameter is the project's: db/tenancy.py)
            reads.contents.append(sum(p != DEFAULT_PROJECT for p in parameters))
        elif statement.startswith("UPDATE messages SET token_count"):
            reads.updates += 1

    target = app.state.engine.sync_engine
    event.listen(target, "before_cursor_execute", seen)
    try:
        yield reads
    finally:
        event.remove(target, "before_cursor_execute", seen)


def _limit(statement: str, parameters: Any) -> int:
    """The LIMIT bound to a statement (`LIMIT $n` on PostgreSQL, `LIMIT ?` on SQLite)."""
    head, _, tail = statement.partition("LIMIT")
    numbered = re.match(r"\s*\$(\d+)", tail)
    return int(parameters[int(numbered.group(1)) - 1] if numbered
               else parameters[head.count("?")])


async def _long_thread(client: httpx.AsyncClient) -> tuple[str, str]:
    assistant_id = (await client.post("/v1/assistants", json={"model": "fake-model"})).json()["id"]
    thread = await client.post("/v1/threads", json={})
    assert thread.status_code == 200, thread.text
    thread_id = thread.json()["id"]
    for i in range(THREAD_LENGTH):  # one at a time: a request creates 32 messages at most
        created = await client.post(f"/v1/threads/{thread_id}/messages",
                                    json={"role": "user", "content": _text(i)})
        assert created.status_code == 200, created.text
    return assistant_id, thread_id


async def _run(client: httpx.AsyncClient, thread_id: str, assistant_id: str,
               **extra: Any) -> None:
    run = (await client.post(f"/v1/threads/{thread_id}/runs",
                             json={"assistant_id": assistant_id, **extra})).json()
    deadline = time.monotonic() + 10
    while (await client.get(f"/v1/threads/{thread_id}/runs/{run['id']}")).json()[
            "status"] != "completed":
        assert time.monotonic() < deadline, "the run did not complete"
        await asyncio.sleep(0.02)


def _newest_that_fit(budget: int) -> list[str]:
    """What counting every message (as the context did before counts were stored) keeps."""
    kept: list[str] = []
    used = REPLY_PRIMING  # no instructions, no tools
    for i in reversed(range(THREAD_LENGTH)):
        cost = count_message({"role": "user", "content": _text(i)})
        if used + cost > budget:
            break
        kept.insert(0, _text(i))
        used += cost
    return kept


@pytest.mark.parametrize("budget", [300, 900])
async def test_a_long_thread_reads_only_the_messages_that_fit(
    app: FastAPI, client: httpx.AsyncClient, sent: list[dict[str, Any]], budget: int
) -> None:
    assistant_id, thread_id = await _long_thread(client)
    with _watch(app) as reads:
        await _run(client, thread_id, assistant_id, max_prompt_tokens=budget)
    expected = _newest_that_fit(budget)
    assert [m["content"] for m in sent[-1]["messages"]] == expected
    assert reads.content_rows == len(expected)  # the content of exactly those sent
    assert reads.cost_rows <= len(expected) + FIRST_PAGE
    assert reads.cost_rows < THREAD_LENGTH // 2 and reads.updates == 0


async def test_last_messages_reads_only_the_last_n(
    app: FastAPI, client: httpx.AsyncClient, sent: list[dict[str, Any]]
) -> None:
    assistant_id, thread_id = await _long_thread(client)
    with _watch(app) as reads:
        await _run(client, thread_id, assistant_id,
                   truncation_strategy={"type": "last_messages", "last_messages": 7})
    assert [m["content"] for m in sent[-1]["messages"]] == [
        _text(i) for i in range(THREAD_LENGTH - 7, THREAD_LENGTH)]
    assert (reads.cost_rows, reads.content_rows) == (7, 7)


async def test_the_answer_of_a_run_stores_its_count(
    app: FastAPI, client: httpx.AsyncClient, sent: list[dict[str, Any]]
) -> None:
    assistant_id, thread_id = await _long_thread(client)
    await _run(client, thread_id, assistant_id,
               truncation_strategy={"type": "last_messages", "last_messages": 2})
    async with _sessionmaker(app)() as session:
        answer = await session.scalar(select(MessageRow).where(
            MessageRow.thread_id == thread_id, MessageRow.role == "assistant"))
    assert answer is not None and answer.token_count is not None
    assert answer.token_count == message_tokens("assistant", answer.content) > 0
    # The next run counts it as the first did not: it is the newest message.
    await _run(client, thread_id, assistant_id,
               truncation_strategy={"type": "last_messages", "last_messages": 2})
    assert sent[-1]["messages"] == [{"role": "user", "content": _text(THREAD_LENGTH - 1)},
                                    {"role": "assistant", "content": "Hello!"}]


async def test_messages_without_a_count_are_counted_once_when_first_read(
    app: FastAPI, client: httpx.AsyncClient, sent: list[dict[str, Any]]
) -> None:
    """As rows written before the migration: NULL counts, counted by the first context that
    reads them and stored with its commit; the context is the same as with stored counts."""
    assistant_id, thread_id = await _long_thread(client)
    async with _sessionmaker(app)() as session:
        await session.execute(update(MessageRow).where(MessageRow.thread_id == thread_id)
                              .values(token_count=None))
        await session.commit()
    with _watch(app) as reads:
        await _run(client, thread_id, assistant_id, max_prompt_tokens=600)
    expected = _newest_that_fit(600)
    assert [m["content"] for m in sent[-1]["messages"]] == expected
    assert reads.updates == 1  # one statement for the page counted
    async with _sessionmaker(app)() as session:
        stored = list(await session.execute(select(
            MessageRow.role, MessageRow.content, MessageRow.token_count).where(
            MessageRow.thread_id == thread_id, MessageRow.token_count.is_not(None))))
    assert len(expected) <= len(stored) < THREAD_LENGTH  # those read, not the whole thread
    assert all(row.token_count == message_tokens(row.role, row.content) for row in stored)
    with _watch(app) as reads:
        await _run(client, thread_id, assistant_id, max_prompt_tokens=600)
    assert reads.updates == 0
    assert [m["content"] for m in sent[-1]["messages"]][-1] == "Hello!"


def _sessionmaker(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    return sessionmaker
