"""Each message stores what it costs in a prompt (`messages.token_count`), set by the ORM's
mapper events however the row is written, equal to what the run's context counts for it; rows
written before the column existed keep NULL until a context reads them."""

from __future__ import annotations

from typing import Any, cast

import httpx
from fastapi import FastAPI
from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import flag_modified

from assistants_server.app import create_app
from assistants_server.config import Settings
from assistants_server.db.engine import create_engine, create_sessionmaker
from assistants_server.db.migrate import alembic_config
from assistants_server.db.models import MessageRow, ThreadRow
from assistants_server.db.tenancy import DEFAULT_PROJECT
from assistants_server.tokens import PER_MESSAGE, chat_message, count_message, count_text
from tests.conftest import BETA

PNG = "data:image/png;base64,iVBORw0KGgo="


def _fresh(role: str, content: list[Any]) -> int:
    """What the context counts for a message, computed here afresh."""
    message = chat_message(role, content)
    return 0 if message is None else count_message(message)


def _text(value: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"value": value, "annotations": []}}]


async def _rows(app: FastAPI, thread_id: str) -> list[MessageRow]:
    sessionmaker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    async with sessionmaker() as session:
        return list(await session.scalars(select(MessageRow).where(
            MessageRow.thread_id == thread_id).order_by(MessageRow.pk)))


async def test_messages_written_through_the_api_store_what_the_context_counts(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    thread = (await client.post("/v1/threads", json={"messages": [
        {"role": "user", "content": "hello"},
        {"role": "user", "content": [{"type": "text", "text": "two "},
                                     {"type": "text", "text": "parts"}]},
        {"role": "user", "content": [{"type": "text", "text": "look:"},
                                     {"type": "image_url", "image_url": {"url": PNG}},
                                     {"type": "image_file", "image_file": {"file_id": "file-a"}}]},
        {"role": "assistant", "content": "你好, I am the assistant " * 30},
        # The model is shown nothing of an assistant's image: it costs nothing.
        {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": PNG}}]},
    ]})).json()
    added = await client.post(f"/v1/threads/{thread['id']}/messages", json={
        "role": "user", "content": "one more", "attachments": []})
    assert added.status_code == 200, added.text
    rows = await _rows(app, thread["id"])
    assert len(rows) == 6
    for row in rows:
        assert row.token_count == _fresh(row.role, row.content), row.content
    assert rows[0].token_count == PER_MESSAGE + count_text("user") + count_text("hello")
    assert rows[2].token_count == (PER_MESSAGE + count_text("user") + count_text("look:")
                                   + 2 * 85)
    assert rows[4].token_count == 0
    # Listing and reading them is unaffected.
    listed = (await client.get(f"/v1/threads/{thread['id']}/messages")).json()["data"]
    assert [m["id"] for m in listed] == [row.id for row in reversed(rows)]


async def test_every_orm_write_of_a_message_sets_its_count(settings: Settings) -> None:
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker() as session:
            session.add(ThreadRow(project_id=DEFAULT_PROJECT,
                                  id="thread_counts", created_at=1, metadata_={},
                                  tool_resources={}))
            await session.flush()
            one = _message("msg_one", "user", _text("added alone"))
            # A row copied from another carries its count: the insert counts afresh.
            many = [_message("msg_two", "assistant", _text("added with others"), stale=999),
                    _message("msg_three", "assistant", [])]
            session.add(one)
            session.add_all(many)
            await session.flush()
            assert one.token_count == _fresh("user", _text("added alone"))
            assert many[0].token_count == _fresh("assistant", _text("added with others"))
            assert many[1].token_count == 0
            many[1].content = _text("written later")  # the content replaced
            await session.flush()
            assert many[1].token_count == _fresh("assistant", _text("written later"))
            one.content[0]["text"]["value"] = "changed in place, then flagged"
            flag_modified(one, "content")
            await session.flush()
            assert one.token_count == _fresh("user", one.content)
            before = many[0].token_count
            many[0].metadata_ = {"k": "v"}  # not its content: the count stays
            await session.flush()
            assert many[0].token_count == before
            await session.commit()
        async with sessionmaker() as session:
            stored = {row.id: row.token_count for row in await session.scalars(
                select(MessageRow).where(MessageRow.thread_id == "thread_counts"))}
        assert stored == {"msg_one": _fresh("user", _text("changed in place, then flagged")),
                          "msg_two": _fresh("assistant", _text("added with others")),
                          "msg_three": _fresh("assistant", _text("written later"))}
    finally:
        await engine.dispose()


def _message(id_: str, role: str, content: list[Any], stale: int | None = None) -> MessageRow:
    return MessageRow(project_id=DEFAULT_PROJECT,
                      id=id_, created_at=1, thread_id="thread_counts", role=role,
                      content=content, status="completed", attachments=[], metadata_={},
                      token_count=stale)


async def test_messages_from_before_the_migration_keep_working(settings: Settings) -> None:
    """Rows written at revision 0007 get a NULL count from the migration (no backfill), and
    are listed and read as before."""
    from alembic import command

    config = alembic_config(settings)
    command.downgrade(config, "0007")
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(cast(Table, ThreadRow.__table__)).values(
                id="thread_old", created_at=1, metadata={}, tool_resources={}))
            # The columns of revision 0007: no token_count.
            await connection.execute(insert(cast(Table, MessageRow.__table__)).values(
                id="msg_old", created_at=1, metadata={}, thread_id="thread_old", role="user",
                content=_text("written before counts were stored"), status="completed",
                attachments=[]))
    finally:
        await engine.dispose()
    command.upgrade(config, "head")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rows = await _rows(app, "thread_old")
        assert [(row.id, row.token_count) for row in rows] == [("msg_old", None)]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     headers=BETA) as client:
            got = (await client.get("/v1/threads/thread_old/messages/msg_old")).json()
    assert got["content"][0]["text"]["value"] == "written before counts were stored"
