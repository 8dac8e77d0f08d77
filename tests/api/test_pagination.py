"""List pages are index range scans: their cost does not grow with the list.

Timing belongs to bench/; here the query plans prove the property on both databases: the
page query walks the (thread_id, created_at, pk) index and never sorts.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.api.pagination import ListQuery, fetch_page
from assistants_server.config import Settings
from assistants_server.db.engine import create_engine, create_sessionmaker
from assistants_server.db.models import MessageRow
from assistants_server.db.tenancy import DEFAULT_PROJECT


async def _plan(settings: Settings, query: ListQuery) -> str:
    engine = create_engine(settings)
    captured: list[str] = []

    async with create_sessionmaker(engine)() as session:
        original = session.scalars

        async def capture(stmt, *args, **kwargs):  # type: ignore[no-untyped-def]
            dialect = postgresql.dialect() if not settings.is_sqlite else sqlite.dialect()
            sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            prefix = "EXPLAIN QUERY PLAN " if settings.is_sqlite else "EXPLAIN "
            if not settings.is_sqlite:
                await session.execute(text("SET enable_seqscan = off"))
            rows = (await session.execute(text(prefix + sql))).all()
            captured.append("\n".join(str(r[-1]) for r in rows))
            return await original(stmt, *args, **kwargs)

        session.scalars = capture  # type: ignore[method-assign]
        await _seed(session)
        await fetch_page(session, MessageRow, query, MessageRow.thread_id == "thread_a")
    await engine.dispose()
    return "\n---\n".join(captured)


async def _seed(session: AsyncSession) -> None:
    await session.execute(text(
        "INSERT INTO threads (id, created_at, metadata, tool_resources) "
        "VALUES ('thread_a', 1, '{}', '{}')"))
    for i in range(30):
        session.add(MessageRow(project_id=DEFAULT_PROJECT,
                               id=f"msg_{i:024d}", created_at=1 + i // 10, thread_id="thread_a",
                               role="user", content=[], status="completed", attachments=[],
                               metadata_={}))
    await session.flush()


def _assert_index_walk(plans: str) -> None:
    for plan in plans.split("\n---\n"):
        assert "ix_messages_thread_order" in plan, plan
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


async def test_first_page_walks_the_thread_index_without_sorting(settings: Settings) -> None:
    plan = await _plan(settings, ListQuery(limit=20))
    _assert_index_walk(plan)


async def test_after_cursor_page_walks_the_index_without_sorting(settings: Settings) -> None:
    _assert_index_walk(await _plan(settings, ListQuery(limit=5, after=f"msg_{12:024d}")))


async def test_before_cursor_page_in_ascending_order_walks_the_index(settings: Settings) -> None:
    query = ListQuery(limit=5, order="asc", before=f"msg_{20:024d}")
    _assert_index_walk(await _plan(settings, query))


async def test_cursor_pages_match_the_ordered_list_with_ties_across_seconds(
    settings: Settings,
) -> None:
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session:
        await _seed(session)  # 30 messages, 10 per second over three seconds
        await session.commit()
        scope = MessageRow.thread_id == "thread_a"
        ids = [f"msg_{i:024d}" for i in range(30)]
        for order, expected in (("asc", ids), ("desc", ids[::-1])):
            for cursor in (0, 9, 10, 15, 29):
                after, more = await fetch_page(session, MessageRow, ListQuery(
                    limit=7, order=order, after=expected[cursor]), scope)
                assert [r.id for r in after] == expected[cursor + 1:cursor + 8]
                assert more == (cursor + 8 < 30)
                before, more = await fetch_page(session, MessageRow, ListQuery(
                    limit=7, order=order, before=expected[cursor]), scope)
                assert [r.id for r in before] == expected[max(0, cursor - 7):cursor]
                assert more == (cursor - 7 > 0)
            between, more = await fetch_page(session, MessageRow, ListQuery(
                limit=100, order=order, after=expected[3], before=expected[25]), scope)
            assert [r.id for r in between] == expected[4:25] and more is False
    await engine.dispose()
