"""Drives a run through the hosted service's documented lifecycle, one turn at a time:

    queued -> in_progress                  start: the context built, the model asked
           -> (the answer relayed)         relay: text and tool-call deltas as they come
           -> completed | incomplete       record: the message written, or
           -> requires_action                       function calls handed to the client
           -> in_progress (next round)     serve: server tools run, their outputs the next turn
           -> failed | expired | cancelled  on the way: an error, the deadline, a cancel

Statuses change only in db/states.py; `engine/start.py` and `engine/outcome.py` hold each
phase's commit. Text stays in memory until its commit, so a process that dies mid-turn leaves
nothing half-written (the executor's sweeper then fails the run); a turn that is cancelled,
fails or expires keeps what was streamed, marked incomplete.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistants_server import tracing
from assistants_server.backends.chat import ASKED_FOR, BackendError, ChatBackend
from assistants_server.db.models import RunRow
from assistants_server.engine.answer import Prefetched
from assistants_server.engine.outcome import end, record, record_tools
from assistants_server.engine.server_tools import execute_calls
from assistants_server.engine.start import Profiles, begin
from assistants_server.engine.turn import Turn
from assistants_server.events.bus import EventBus
from assistants_server.logs import THREAD_ID
from assistants_server.runs.failures import FAULT, from_backend, too_many_rounds
from assistants_server.runs.lifecycle import on_fresh_state
from assistants_server.tools.base import ToolServices

log = logging.getLogger(__name__)
T = TypeVar("T")
# Server tool rounds one run may take before it is stopped (a model calling tools forever).
MAX_ROUNDS = 10


async def drive_run(
    sessionmaker: async_sessionmaker[AsyncSession],
    backend: ChatBackend,
    run_id: str,
    profiles: Profiles,
    bus: EventBus | None = None,
    services: ToolServices | None = None,
    known: RunRow | None = None,
) -> None:
    """Turns until the run waits for the client or ends. `known`: the run as the request that
    queued it committed it, so that starting it needs no read (a retry, the run having moved
    meanwhile, reads it afresh)."""
    ASKED_FOR.set(f"run {run_id}")  # named in the backends' log lines
    with tracing.run_span(run_id, await tracing.context_of(sessionmaker, run_id, known)):
        await _drive(sessionmaker, backend, run_id, profiles, bus, services or ToolServices(),
                     known)


async def _drive(
    sessionmaker: async_sessionmaker[AsyncSession], backend: ChatBackend, run_id: str,
    profiles: Profiles, bus: EventBus | None, services: ToolServices, known: RunRow | None,
) -> None:
    first = [known] if known is not None else []
    started = await on_fresh_state(
        lambda: begin(sessionmaker, backend, bus, run_id, profiles, blobs=services.blobs,
                      known=first.pop() if first else None))
    for round_ in range(1, MAX_ROUNDS + 1):
        if started is None:
            return  # nothing to do: cancelled before it started, or the prompt cannot fit
        context, deadline, turn, answer = started
        THREAD_ID.set(turn.thread_id)
        if not await _relay(sessionmaker, turn, answer, deadline):
            return
        # Shielded: a cancel arriving now finds the run `cancelling`, which `record` honours;
        # it must not cut the writing of the outcome in half.
        serve = await asyncio.shield(
            on_fresh_state(partial(record, sessionmaker, turn, context.prompt_tokens)))
        if not serve or not await _serve(sessionmaker, services, turn, deadline, profiles):
            return  # completed, incomplete, requires_action, or ended on the way
        if round_ == MAX_ROUNDS:
            await on_fresh_state(partial(
                end, sessionmaker, turn, "failed", too_many_rounds(MAX_ROUNDS)))
            return
        try:
            started = await on_fresh_state(partial(
                begin, sessionmaker, backend, bus, run_id, profiles, resume=True,
                blobs=services.blobs))
        except asyncio.CancelledError:
            await asyncio.shield(on_fresh_state(
                partial(end, sessionmaker, turn, "cancelled", None)))
            raise


async def _relay(
    sessionmaker: async_sessionmaker[AsyncSession], turn: Turn, answer: Prefetched,
    deadline: float,
) -> bool:
    """Relay the model's answer into `turn`; False when the run ended on the way."""

    async def relay() -> bool:
        turn.prepare()  # while the model works on its first token
        async for event in answer:
            await turn.add(event)
        return True

    try:
        return await _guarded(sessionmaker, turn, deadline, relay, "relaying the answer") \
            is not None
    finally:
        answer.close()


async def _serve(
    sessionmaker: async_sessionmaker[AsyncSession], services: ToolServices, turn: Turn,
    deadline: float, profiles: Profiles,
) -> bool:
    """Run the turn's server tool calls and record their outputs; True when the model is to
    be asked again (no function call is left for the client)."""
    run = turn.known  # as the turn's outcome was just committed
    assert run is not None
    entries = await _guarded(
        sessionmaker, turn, deadline, lambda: execute_calls(
            sessionmaker, services, run, turn.server_calls(), turn.searches,
            profiles(run.model).context_window),
        "running its tools")
    if entries is None:
        return False
    return await asyncio.shield(
        on_fresh_state(lambda: record_tools(sessionmaker, turn, entries)))


async def _guarded(
    sessionmaker: async_sessionmaker[AsyncSession], turn: Turn, deadline: float,
    work: Callable[[], Awaitable[T]], doing: str,
) -> T | None:
    """`work`, within the run's deadline; when it fails, runs out of time or is cancelled, the
    run ends the way that calls for (keeping what was streamed) and None is returned."""
    try:
        async with asyncio.timeout(max(0.0, deadline - time.time())):
            return await work()
    except BackendError as exc:
        log.warning("run %s failed while %s: %s", turn.run_id, doing, exc.message)
        error = from_backend(exc.code, exc.message)
        await on_fresh_state(lambda: end(sessionmaker, turn, "failed", error))
    except TimeoutError:
        await on_fresh_state(lambda: end(sessionmaker, turn, "expired", None))
    except asyncio.CancelledError:
        await asyncio.shield(on_fresh_state(lambda: end(sessionmaker, turn, "cancelled", None)))
        raise
    except Exception:
        # A fault of ours: the stream gets the `error` event, the run fails.
        log.exception("run %s failed unexpectedly while %s", turn.run_id, doing)
        await on_fresh_state(lambda: end(sessionmaker, turn, "failed", FAULT, fault=True))
    return None
