"""Running the calls the server executes itself, through each call's tool (tools/registry.py).

No transaction is held while a tool works: a search's reads and a sandbox execution happen
outside the run's writes, and the files an execution saves commit on their own.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistants_server.db.models import RunRow
from assistants_server.tools.base import Call, Entry, ToolRound, ToolServices
from assistants_server.tools.registry import tool_for


async def execute_calls(
    sessionmaker: async_sessionmaker[AsyncSession], services: ToolServices, run: RunRow,
    calls: list[Call], searches: int, context_window: int,
) -> list[Entry]:
    """Step entries for `calls`, in order; `searches` numbers this run's earlier searches.
    `run`: as the turn that made the calls committed it (its tools and resources are read)."""
    round_ = ToolRound(sessionmaker, services, run, context_window, searches)
    return [await tool_for(call["type"]).execute(call, round_) for call in calls]
