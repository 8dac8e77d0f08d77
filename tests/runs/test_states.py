"""The state machine: every transition in the table is allowed, every other one refused, and
each stamps what it should."""

from __future__ import annotations

import itertools

import pytest

from assistants_server.db.models import RunRow, RunStepRow
from assistants_server.runs.states import (
    ACTIVE,
    RUN_TRANSITIONS,
    STEP_TRANSITIONS,
    TERMINAL,
    TransitionError,
    transition_run,
    transition_step,
)

RUN_STATUSES = sorted(ACTIVE | TERMINAL)
ALLOWED = {(a, b) for a, targets in RUN_TRANSITIONS.items() for b in targets}


def _run(status: str) -> RunRow:
    return RunRow(id="run_x", thread_id="thread_x", active_thread_id="thread_x",
                  status=status, expires_at=1600, lease_owner="me", lease_expires_at=9.0,
                  required_action={"type": "submit_tool_outputs"}, started_at=None)


def test_the_table_matches_the_documented_lifecycle() -> None:
    assert {
        ("queued", "in_progress"), ("in_progress", "requires_action"),
        ("requires_action", "queued"), ("in_progress", "completed"),
        ("in_progress", "incomplete"), ("in_progress", "failed"),
        ("in_progress", "cancelling"), ("cancelling", "cancelled"),
        ("requires_action", "expired"), ("queued", "expired")} <= ALLOWED
    assert not any(status in RUN_TRANSITIONS for status in TERMINAL)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(RUN_STATUSES, repeat=2)))
def test_run_transition_is_allowed_exactly_when_the_table_says(current: str, target: str) -> None:
    run = _run(current)
    if (current, target) in ALLOWED:
        assert transition_run(run, target, 1000) == f"thread.run.{target}"  # type: ignore[arg-type]
        assert run.status == target
    else:
        with pytest.raises(TransitionError):
            transition_run(run, target, 1000)  # type: ignore[arg-type]
        assert run.status == current


@pytest.mark.parametrize("target", sorted(TERMINAL))
def test_terminal_status_frees_the_thread_and_clears_expiry_and_lease(target: str) -> None:
    source = "cancelling" if target == "cancelled" else "in_progress"
    run = _run(source)
    transition_run(run, target, 1234)  # type: ignore[arg-type]
    assert (run.active_thread_id, run.expires_at, run.lease_owner) == (None, None, None)
    stamp = {"cancelled": "cancelled_at", "failed": "failed_at", "completed": "completed_at",
             "incomplete": "completed_at"}.get(target)
    if stamp:
        assert getattr(run, stamp) == 1234


def test_in_progress_stamps_started_at_once() -> None:
    run = _run("queued")
    transition_run(run, "in_progress", 10)
    transition_run(run, "requires_action", 11)
    transition_run(run, "queued", 12)
    transition_run(run, "in_progress", 13)
    assert run.started_at == 10


def test_requires_action_keeps_the_action_and_leaving_it_clears_it() -> None:
    run = _run("in_progress")
    transition_run(run, "requires_action", 1)
    assert run.required_action is not None and run.lease_owner is None
    transition_run(run, "queued", 2)
    assert run.required_action is None and run.active_thread_id == "thread_x"


@pytest.mark.parametrize("target", ["completed", "failed", "cancelled", "expired"])
def test_step_leaves_in_progress_once_with_its_timestamp(target: str) -> None:
    step = RunStepRow(id="step_x", status="in_progress")
    assert transition_step(step, target, 5) == f"thread.run.step.{target}"  # type: ignore[arg-type]
    assert getattr(step, f"{target}_at") == 5
    with pytest.raises(TransitionError):
        transition_step(step, "completed", 6)
    assert set(STEP_TRANSITIONS) == {"in_progress"}
