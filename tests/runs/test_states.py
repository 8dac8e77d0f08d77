"""The state machine: every transition in the table is allowed, every other one refused, and
each stamps what it should."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

import assistants_server
from assistants_server.db.models import MessageRow, RunRow, RunStepRow
from assistants_server.db.states import (
    ACTIVE,
    MESSAGE_TRANSITIONS,
    RUN_TRANSITIONS,
    STEP_TRANSITIONS,
    TERMINAL,
    TransitionError,
    transition_message,
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


@pytest.mark.parametrize(("current", "target"), list(itertools.product(
    ["in_progress", "completed", "incomplete"], repeat=2)))
def test_message_transition_is_allowed_exactly_when_the_table_says(
    current: str, target: str
) -> None:
    message = MessageRow(id="msg_x", status=current, completed_at=None, incomplete_at=None,
                         incomplete_details=None)
    if target in MESSAGE_TRANSITIONS.get(current, frozenset()):
        event = transition_message(message, target, 1000, "run_cancelled")  # type: ignore[arg-type]
        assert event == f"thread.message.{target}"
        assert message.status == target
        if target == "completed":
            assert (message.completed_at, message.incomplete_details) == (1000, None)
        else:
            assert message.incomplete_at == 1000
            assert message.incomplete_details == {"reason": "run_cancelled"}
    else:
        with pytest.raises(TransitionError):
            transition_message(message, target, 1000)  # type: ignore[arg-type]
        assert message.status == current


_SOURCE = Path(assistants_server.__file__).parent


def _status_writes(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a run's, a step's or a message's status is assigned directly: an assignment to
    `<row>.status`, or a row created in a status given as a literal rather than one of the
    named first statuses."""
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            for target in node.targets:
                targets += target.elts if isinstance(target, ast.Tuple) else [target]
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            # `self.status`: an object's own field (a backend error's HTTP status), no row's.
            if isinstance(target, ast.Attribute) and target.attr == "status" \
                    and ast.unparse(target.value) != "self":
                found.append((node.lineno, ast.unparse(target)))
        if isinstance(node, ast.Call) and ast.unparse(node.func) in (
                "MessageRow", "RunRow", "RunStepRow"):
            for keyword in node.keywords:
                if keyword.arg == "status" and isinstance(keyword.value, ast.Constant):
                    found.append((node.lineno, f"{ast.unparse(node.func)}(status=...)"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "setattr" and len(node.args) > 1 \
                and isinstance(node.args[1], ast.Constant) and node.args[1].value == "status":
            found.append((node.lineno, "setattr(..., 'status')"))
    return found


def test_no_status_is_assigned_outside_the_state_machine() -> None:
    offenders = []
    for path in sorted(_SOURCE.rglob("*.py")):
        relative = path.relative_to(_SOURCE).as_posix()
        # db/states.py is the state machine; vector stores' files and batches, and projects,
        # have statuses of their own, not a run's, step's or message's.
        if relative == "db/states.py" or relative.startswith(("vector_stores/", "access/")):
            continue
        offenders += [f"{relative}:{line}: {what}"
                      for line, what in _status_writes(ast.parse(path.read_text()))]
    assert offenders == []


def test_the_scan_finds_direct_assignments() -> None:
    tree = ast.parse("run.status = 'failed'\nmessage.status, message.completed_at = 'x', 1\n"
                     "RunStepRow(status='completed')\nsetattr(step, 'status', 'x')\n"
                     "RunRow(status=QUEUED)\nrun.status == 'queued'\n")
    assert [line for line, _ in _status_writes(tree)] == [1, 2, 3, 4]
