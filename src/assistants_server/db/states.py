"""The one state machine of runs, run steps and messages.

Every status a run, a step or a message can take is listed here, and every change goes
through `transition_run`, `transition_step` or `transition_message`: they check the table,
stamp the timestamp the new status implies, keep the active-run guard and `expires_at` in
step, and return the name of the event to publish (`thread.run.<status>`,
`thread.run.step.<status>`, `thread.message.<status>`). Nothing else assigns a status: rows
are created in their first status (`QUEUED`, `IN_PROGRESS`, a user's message `COMPLETED`) and
moved from there (tests/runs/test_states.py scans the source for other assignments).

    run:  queued -> in_progress -> requires_action -> queued ... -> completed | incomplete
          any active status -> cancelling -> cancelled; failed; expired (past expires_at)
          in_progress -> queued: handed back by a process that is stopping (its turn is
          dropped, and any process claims the run and starts that turn anew)
    step: in_progress -> completed | failed | cancelled | expired
    message (the assistant's): in_progress -> completed | incomplete
"""

from __future__ import annotations

from typing import Literal

from assistants_server.db.models import MessageRow, RunRow, RunStepRow

RunStatus = Literal["queued", "in_progress", "requires_action", "cancelling", "cancelled",
                    "failed", "completed", "incomplete", "expired"]
StepStatus = Literal["in_progress", "cancelled", "failed", "completed", "expired"]
MessageStatus = Literal["in_progress", "incomplete", "completed"]
# The statuses rows are created in.
QUEUED: RunStatus = "queued"
IN_PROGRESS: Literal["in_progress"] = "in_progress"
COMPLETED: MessageStatus = "completed"  # a message written by the user (or the API) whole

ACTIVE: frozenset[str] = frozenset({"queued", "in_progress", "requires_action", "cancelling"})
TERMINAL: frozenset[str] = frozenset({"cancelled", "failed", "completed", "incomplete",
                                      "expired"})
# Every run lives at most this long before it expires, as on the hosted service.
RUN_LIFETIME_SECONDS = 600

RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"in_progress", "cancelling", "cancelled", "failed", "expired"}),
    "in_progress": frozenset({"requires_action", "completed", "incomplete", "failed",
                              "cancelling", "expired", "queued"}),
    "requires_action": frozenset({"queued", "cancelling", "cancelled", "failed", "expired"}),
    "cancelling": frozenset({"cancelled", "failed", "expired"}),
}
STEP_TRANSITIONS: dict[str, frozenset[str]] = {
    "in_progress": frozenset({"completed", "failed", "cancelled", "expired"}),
}
MESSAGE_TRANSITIONS: dict[str, frozenset[str]] = {
    "in_progress": frozenset({"completed", "incomplete"}),
}
_RUN_STAMPS = {"cancelled": "cancelled_at", "failed": "failed_at", "completed": "completed_at",
               "incomplete": "completed_at"}
_STEP_STAMPS = {"cancelled": "cancelled_at", "failed": "failed_at", "completed": "completed_at",
                "expired": "expired_at"}


class TransitionError(Exception):
    """A status change the table does not allow; callers turn it into the service's 400."""

    def __init__(self, kind: str, current: str, target: str) -> None:
        super().__init__(f"a {kind} cannot go from {current} to {target}")
        self.current = current
        self.target = target


def transition_run(run: RunRow, target: RunStatus, now: int) -> str:
    """Move `run` to `target`; returns the event name (`thread.run.<status>`)."""
    if target not in RUN_TRANSITIONS.get(run.status, frozenset()):
        raise TransitionError("run", run.status, target)
    run.status = target
    if target == "in_progress" and run.started_at is None:
        run.started_at = now
    if target != "requires_action":
        run.required_action = None
    if stamp := _RUN_STAMPS.get(target):
        setattr(run, stamp, now)
    if target not in ("in_progress", "cancelling"):
        # Only a run being driven holds a lease: waiting for outputs, queued again or ended,
        # it is free for any process to claim (or nothing to claim).
        run.lease_owner = None
        run.lease_expires_at = None
    if target in TERMINAL:
        run.active_thread_id = None
        run.expires_at = None
    return f"thread.run.{target}"


def transition_step(step: RunStepRow, target: StepStatus, now: int) -> str:
    """Move `step` to `target`; returns the event name (`thread.run.step.<status>`)."""
    if target not in STEP_TRANSITIONS.get(step.status, frozenset()):
        raise TransitionError("run step", step.status, target)
    step.status = target
    setattr(step, _STEP_STAMPS[target], now)
    return f"thread.run.step.{target}"


def transition_message(
    message: MessageRow, target: MessageStatus, now: int, reason: str | None = None
) -> str:
    """Move `message` to `target`; `reason`: why it is incomplete (`run_cancelled`,
    `max_tokens` ...). Returns the event name (`thread.message.<status>`)."""
    if target not in MESSAGE_TRANSITIONS.get(message.status, frozenset()):
        raise TransitionError("message", message.status, target)
    message.status = target
    if target == "completed":
        message.completed_at = now
    else:
        message.incomplete_at = now
        message.incomplete_details = {"reason": reason}
    return f"thread.message.{target}"
