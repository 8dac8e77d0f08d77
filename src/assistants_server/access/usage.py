"""Tokens used per project, model and time bucket, from what runs recorded: every model call of
a run is a step with its usage (engine/outcome.py). Served in the shape of OpenAI's
`GET /v1/organization/usage/completions`; a deleted thread's runs take their usage with them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.db.models import RunRow, RunStepRow
from assistants_server.kit.errors import InvalidRequestError

Width = Literal["1m", "1h", "1d"]
SECONDS = {"1m": 60, "1h": 3600, "1d": 86400}
# Buckets per page: (default, most).
LIMITS = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}
GROUPS = ("project_id", "model")


@dataclass(frozen=True)
class UsageQuery:
    start_time: int
    end_time: int | None = None
    bucket_width: Width = "1d"
    project_ids: Sequence[str] = ()
    models: Sequence[str] = ()
    group_by: Sequence[str] = ()
    limit: int | None = None
    page: str | None = None


def _bounds(query: UsageQuery) -> tuple[int, int, int]:
    """(first bucket's start, end, bucket width) of the page asked for."""
    width = SECONDS[query.bucket_width]
    default, most = LIMITS[query.bucket_width]
    limit = query.limit if query.limit is not None else default
    if not 1 <= limit <= most:
        raise InvalidRequestError(f"Invalid 'limit': with bucket_width={query.bucket_width} it "
                                  f"is 1 to {most}.", param="limit")
    for name in query.group_by:
        if name not in GROUPS:
            raise InvalidRequestError(f"Invalid 'group_by': '{name}'. This server groups by "
                                      f"{' and '.join(GROUPS)}.", param="group_by")
    start = query.start_time - query.start_time % width
    if query.page is not None:
        if not query.page.startswith("page_") or not query.page[5:].isdigit():
            raise InvalidRequestError("Invalid 'page': use the next_page of the previous "
                                      "answer.", param="page")
        start = int(query.page[5:])
    end = start + limit * width
    if query.end_time is not None:
        end = min(end, query.end_time)
    return start, end, width


async def completions_usage(session: AsyncSession, query: UsageQuery) -> dict[str, Any]:
    start, end, width = _bounds(query)
    statement = (select(RunRow.project_id, RunRow.model, RunStepRow.created_at,
                        RunStepRow.usage)
                 .join(RunRow, RunRow.id == RunStepRow.run_id)
                 .where(RunStepRow.usage.is_not(None), RunStepRow.created_at >= start,
                        RunStepRow.created_at < end))
    if query.project_ids:
        statement = statement.where(RunRow.project_id.in_(query.project_ids))
    if query.models:
        statement = statement.where(RunRow.model.in_(query.models))
    totals: dict[tuple[int, str | None, str | None], list[int]] = defaultdict(
        lambda: [0, 0, 0])
    rows = await session.stream(statement.execution_options(yield_per=1000))
    async for project_id, model, created_at, usage in rows:
        key = (created_at - (created_at - start) % width,
               project_id if "project_id" in query.group_by else None,
               model if "model" in query.group_by else None)
        total = totals[key]
        total[0] += int(usage.get("prompt_tokens", 0))
        total[1] += int(usage.get("completion_tokens", 0))
        total[2] += 1
    by_bucket: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for (at, project_id, model), total in sorted(
            totals.items(), key=lambda item: (item[0][1] or "", item[0][2] or "")):
        by_bucket[at].append(_result(project_id, model, *total))
    buckets = [{"object": "bucket", "start_time": at, "end_time": min(at + width, end),
                "results": by_bucket.get(at, [])} for at in range(start, end, width)]
    more = end < (query.end_time if query.end_time is not None else int(time.time()))
    return {"object": "page", "data": buckets, "has_more": more,
            "next_page": f"page_{end}" if more else None}


def _result(project_id: str | None, model: str | None, input_tokens: int, output_tokens: int,
            requests: int) -> dict[str, Any]:
    return {"object": "organization.usage.completions.result", "input_tokens": input_tokens,
            "output_tokens": output_tokens, "input_cached_tokens": 0,
            "input_audio_tokens": 0, "output_audio_tokens": 0,
            "num_model_requests": requests, "project_id": project_id, "user_id": None,
            "api_key_id": None, "model": model, "batch": False, "service_tier": None}
