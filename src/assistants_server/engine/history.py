"""The thread's messages a run's context keeps: the newest that fit the budget, at most
`last_messages` of them, read from the costs stored with the messages (db/models.py) rather
than by tokenizing the thread.

The costs are read newest first, without content, in pages sized from what is left of the
budget and the costs seen so far, until the budget is spent or the limit reached; then the
content of exactly the messages kept is read, by primary key. A long thread costs no more than
what is sent. A message written before counts were stored is counted when first read here,
and its count stored with the session's commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.db.models import MessageRow
from assistants_server.tokens import chat_message, message_tokens

# Costs read at once: the first page (nothing is known yet of the thread's messages) and the
# most; pages in between are sized from what is left of the budget and the costs seen so far.
FIRST_PAGE = 32
MAX_PAGE = 1000
# The thread's messages newest first, as plain rows of their stored costs (no content, no ORM
# objects to build and track); built once (every turn reads them).
_COSTS = (select(MessageRow.pk, MessageRow.created_at, MessageRow.token_count)
          .where(MessageRow.thread_id == bindparam("thread_id"))
          .order_by(MessageRow.created_at.desc(), MessageRow.pk.desc()))
# What a chat message needs of the messages kept (and of uncounted ones, to count them).
_SHOWN = select(MessageRow.pk, MessageRow.role, MessageRow.content).where(
    MessageRow.pk.in_(bindparam("pks", expanding=True)))


async def thread_history(
    session: AsyncSession, thread_id: str, budget: int, limit: int | None
) -> tuple[list[dict[str, Any]], int, bool]:
    """The newest messages within the budget and `limit`, oldest first; the tokens they take;
    False when not even the newest message the model is shown fits."""
    costs, fits = await _pick(session, thread_id, budget, limit)
    shown: dict[int, dict[str, Any]] = {}
    pks = list(costs)
    for start in range(0, len(pks), MAX_PAGE):
        for row in await session.execute(_SHOWN, {"pks": pks[start:start + MAX_PAGE]}):
            message = chat_message(row.role, row.content)
            if message is not None:
                shown[row.pk] = message
    kept = [pk for pk in reversed(pks) if pk in shown]  # a message deleted meanwhile is gone
    return [shown[pk] for pk in kept], sum(costs[pk] for pk in kept), fits


async def _pick(
    session: AsyncSession, thread_id: str, budget: int, limit: int | None
) -> tuple[dict[int, int], bool]:
    """The messages kept, newest first, by pk with their costs, read from the stored counts;
    and whether the newest message shown fits (an empty thread fits)."""
    kept: dict[int, int] = {}
    used = 0
    cursor: tuple[int, int] | None = None
    while limit is None or len(kept) < limit:
        size = _page_size(budget - used, used / len(kept) if kept else None,
                          None if limit is None else limit - len(kept))
        rows = await _costs_page(session, thread_id, cursor, size)
        counted = await _count_uncounted(session, rows)
        for row in rows:
            cost = counted.get(row.pk, 0) if row.token_count is None else row.token_count
            if cost == 0:
                continue  # nothing of it is shown (no text, only images of the assistant)
            if used + cost > budget or (limit is not None and len(kept) >= limit):
                return kept, bool(kept)
            kept[row.pk] = cost
            used += cost
        if len(rows) < size:
            break
        cursor = (rows[-1].created_at, rows[-1].pk)
    return kept, True


def _page_size(left: int, mean: float | None, wanted: int | None) -> int:
    """Enough costs to fill what is left of the budget at the `mean` cost kept so far, with a
    margin (the page should also hold the first message that no longer fits), and no more
    than the `wanted` messages left to reach the limit."""
    size = FIRST_PAGE if mean is None else int(max(0, left) / mean * 1.25) + 2
    if wanted is not None:
        size = min(size, wanted)
    return max(1, min(MAX_PAGE, size))


async def _costs_page(
    session: AsyncSession, thread_id: str, cursor: tuple[int, int] | None, size: int
) -> list[Row[int, int, int | None]]:
    """`size` messages' costs, newest first, after `cursor`: two exact index seeks (the
    cursor's own second, then earlier ones), as SQLite seeks a row value on its first column
    only and a thread written in one request shares one second."""
    params = {"thread_id": thread_id}
    if cursor is None:
        return list(await session.execute(_COSTS.limit(size), params))
    created_at, pk = cursor
    rows = list(await session.execute(_COSTS.where(
        MessageRow.created_at == created_at, MessageRow.pk < pk).limit(size), params))
    if len(rows) < size:
        rows += await session.execute(_COSTS.where(
            MessageRow.created_at < created_at).limit(size - len(rows)), params)
    return rows


async def _count_uncounted(
    session: AsyncSession, rows: list[Row[int, int, int | None]]
) -> dict[int, int]:
    """Costs of messages written before counts were stored, counted now and stored (they go
    with the session's commit; if it never comes, they are counted again next time)."""
    pks = [row.pk for row in rows if row.token_count is None]
    if not pks:
        return {}
    counted = {row.pk: message_tokens(row.role, row.content)
               for row in await session.execute(_SHOWN, {"pks": pks})}
    if counted:
        await session.execute(update(MessageRow), [
            {"pk": pk, "token_count": cost} for pk, cost in counted.items()])
    return counted
