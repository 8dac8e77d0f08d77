"""What a run's server tools may use: the ids in the run's `tool_resources` (the assistant's,
or the run's override) followed by those of its thread, as the service combined them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.db.models import RunRow, ThreadRow


async def resource_ids(session: AsyncSession, run: RunRow, tool: str, key: str) -> list[str]:
    """e.g. `resource_ids(session, run, "file_search", "vector_store_ids")`, without repeats."""
    thread = await session.scalar(
        select(ThreadRow.tool_resources).where(ThreadRow.id == run.thread_id))
    ids: list[str] = []
    for resources in (run.tool_resources, thread):
        ids += ((resources or {}).get(tool) or {}).get(key) or []
    return list(dict.fromkeys(ids))
