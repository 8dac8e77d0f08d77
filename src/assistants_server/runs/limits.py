"""What a project may start: runs on the models it may use, within its rate limits on that model
(requests and tokens per minute, requests per day) and its cap on active runs.

Everything is counted in the database (runs by their creation, tokens by the model calls of
the last minute), so the limits hold across processes; a run is one request, as it is one
question to the model however many calls its tools take. Refusals are 429s in OpenAI's words,
with its `x-ratelimit-*` headers.
"""

from __future__ import annotations

import time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.auth.keys import ProjectAccess
from assistants_server.backends.catalog import ModelCatalog
from assistants_server.db.access import ProjectRow
from assistants_server.db.models import RunRow, RunStepRow
from assistants_server.db.states import ACTIVE
from assistants_server.kit.errors import RateLimitError

MINUTE, DAY = 60, 86_400


async def within_limits(project: ProjectAccess | None, session: AsyncSession,
                        models: ModelCatalog, run: RunRow) -> None:
    """Refuse `run` (just flushed, so counted) if its model (the assistant's, when the
    request named none) is not one the project may use, or if it passes a limit."""
    models.check_permitted(run.model)
    if project is None:
        return
    limits = project.rate_limits.get(run.model)
    if project.max_active_runs is None and limits is None:
        return
    # Runs of the project are created one after another from here to the commit (the row
    # lock; SQLite's writes are serial anyway), so that two requests in two processes cannot
    # both count one run too few.
    await session.execute(select(ProjectRow.pk).where(ProjectRow.id == run.project_id)
                          .with_for_update())
    if project.max_active_runs is not None:
        await _active_runs(session, run, project.max_active_runs)
    if limits is not None:
        await _rate(session, run, *limits)


async def _active_runs(session: AsyncSession, run: RunRow, cap: int) -> None:
    # The session sees the run's project only (db/tenancy.py).
    active = await session.scalar(select(func.count()).select_from(RunRow).where(
        RunRow.status.in_(ACTIVE)))
    if (active or 0) > cap:
        raise RateLimitError(
            f"Rate limit reached for active runs in project {run.project_id}: at most {cap} "
            "may be queued or in progress at once. Wait for one to finish, or ask an admin to "
            "raise the project's max_active_runs.", code="rate_limit_exceeded")


async def _rate(session: AsyncSession, run: RunRow, per_minute: int | None,
                tokens_per_minute: int | None, per_day: int | None) -> None:
    now = int(time.time())
    for limit, window, label, short in ((per_minute, MINUTE, "requests per min", "RPM"),
                                        (per_day, DAY, "requests per day", "RPD")):
        if limit is None:
            continue
        made = list(await session.scalars(
            select(RunRow.created_at).where(RunRow.model == run.model,
                                            RunRow.created_at > now - window)
            .order_by(RunRow.created_at).limit(limit + 1)))
        if len(made) > limit:
            wait = max(1, made[0] + window - now)
            raise _limited(run, label, short, limit, len(made) - 1, wait, "requests")
    if tokens_per_minute is not None:
        used = await session.scalar(
            select(func.coalesce(func.sum(RunStepRow.usage["total_tokens"].as_integer()), 0))
            .join(RunRow, RunRow.id == RunStepRow.run_id)
            .where(RunRow.model == run.model, RunStepRow.created_at > now - MINUTE))
        if (used or 0) >= tokens_per_minute:
            raise _limited(run, "tokens per min", "TPM", tokens_per_minute, int(used or 0),
                           MINUTE, "tokens")


def _limited(run: RunRow, label: str, short: str, limit: int, used: int, wait: int,
             kind: str) -> RateLimitError:
    error = RateLimitError(
        f"Rate limit reached for {run.model} in project {run.project_id} on {label} "
        f"({short}): Limit {limit}, Used {used}, Requested 1. Please try again in {wait}s. "
        "An admin sets the project's limits (/v1/organization/projects/{id}/rate_limits).",
        code="rate_limit_exceeded",
        headers={f"x-ratelimit-limit-{kind}": str(limit),
                 f"x-ratelimit-remaining-{kind}": "0",
                 f"x-ratelimit-reset-{kind}": f"{wait}s", "retry-after": str(wait)})
    error.error_type = kind
    return error
