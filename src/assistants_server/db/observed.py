"""Run metrics from what the database commits: a run created, started, ended.

Every run's status changes on its ORM row (`db/states.py`), so the session sees each change
when it flushes; the facts wait on the session until its transaction commits and are dropped
if it rolls back, so a write retried after a stale read is counted once and a failed one not
at all. Registered once, by `install()` (the app calls it).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from assistants_server import metrics
from assistants_server.db.models import RunRow
from assistants_server.db.states import TERMINAL

_FACTS = "observed_runs"
_installed = False


class _Fact(NamedTuple):
    status: str  # the new status, or "created"
    model: str | None
    created_at: int
    first_start: int | None  # started_at, when this change started the run's first turn
    error_code: str | None  # a failed run's last_error code


def install() -> None:
    global _installed
    if not _installed:
        event.listen(Session, "before_flush", _note)
        event.listen(Session, "after_commit", _observe)
        event.listen(Session, "after_rollback", _forget)
        _installed = True


def _note(session: Session, _context: Any, _instances: Any) -> None:
    """The runs' changes in this flush, as plain values (the rows expire at the commit)."""
    facts: list[_Fact] = session.info.setdefault(_FACTS, [])
    for row in session.new:
        if isinstance(row, RunRow):
            facts.append(_Fact("created", row.model, row.created_at, None, None))
    for row in session.dirty:
        if isinstance(row, RunRow) and (state := inspect(row)).attrs.status.history.added:
            first_start = row.started_at if state.attrs.started_at.history.added else None
            code = (row.last_error or {}).get("code") if row.status == "failed" else None
            facts.append(_Fact(row.status, row.model, row.created_at, first_start, code))


def _observe(session: Session) -> None:
    now = int(time.time())
    for fact in session.info.pop(_FACTS, []):
        model = fact.model or "unknown"
        if fact.status == "created":
            metrics.RUNS_CREATED.labels(model).inc()
            continue
        if fact.first_start is not None:
            metrics.QUEUE_SECONDS.observe(max(0, fact.first_start - fact.created_at))
        if fact.status in TERMINAL:
            metrics.RUNS_ENDED.labels(fact.status, model).inc()
            metrics.RUN_SECONDS.labels(fact.status).observe(max(0, now - fact.created_at))
        if fact.error_code is not None:
            metrics.RUNS_FAILED.labels(fact.error_code).inc()


def _forget(session: Session) -> None:
    session.info.pop(_FACTS, None)
