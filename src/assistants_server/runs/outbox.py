"""The events of one unit of work, serialized when they happen and published after it commits.

Payloads are snapshots taken at the moment of each change (a run that goes in_progress and then
incomplete in one commit carries both states), and nothing reaches a stream before the database
holds it. Only runs the bus watches are serialized at all.
"""

from __future__ import annotations

import json
from typing import Any

from assistants_server.db.models import MessageRow, RunRow, RunStepRow, ThreadRow
from assistants_server.db.states import TERMINAL
from assistants_server.events.bus import DONE, EventBus
from assistants_server.runs.schemas import Run, RunStep
from assistants_server.threads.messages.schemas import Message
from assistants_server.threads.schemas import Thread

# A stream closes when the run waits for the client or has ended.
_CLOSING = TERMINAL | {"requires_action"}
SERVER_ERROR = ("The server had an error processing your request. Sorry about that! You can "
                "retry your request, or look at the server's log for the request id.")


class Outbox:
    def __init__(self, bus: EventBus | None) -> None:
        self.bus = bus
        self.events: list[tuple[str, str, str]] = []
        self.ended: set[str] = set()

    def watching(self, run_id: str) -> bool:
        return self.bus is not None and self.bus.watching(run_id)

    def add(self, run_id: str, name: str, data: str) -> None:
        if self.watching(run_id):
            self.events.append((run_id, name, data))

    # The snapshots check `watching` before serializing (the cost worth skipping), then
    # append directly.

    def thread(self, run_id: str, row: ThreadRow) -> None:
        if self.watching(run_id):
            self.events.append((run_id, "thread.created", Thread.from_row(row).model_dump_json()))

    def run(self, row: RunRow, name: str | None = None) -> None:
        """`thread.run.<status>` (or `name`); a run that waits or ended closes the stream."""
        if not self.watching(row.id):
            return
        self.events.append((row.id, name or f"thread.run.{row.status}",
                            Run.from_row(row).model_dump_json()))
        if name is None and row.status in _CLOSING:
            self.events.append((row.id, DONE, "[DONE]"))
            if row.status in TERMINAL:
                self.ended.add(row.id)

    def step(self, row: RunStepRow, run_expires_at: int | None, name: str | None = None,
             include: frozenset[str] = frozenset()) -> None:
        """`include`: the run's `include[]` (file_search results' content)."""
        if self.watching(row.run_id):
            self.events.append((row.run_id, name or f"thread.run.step.{row.status}",
                                RunStep.from_row(row, run_expires_at, include).model_dump_json()))

    def tool_call_delta(self, row: RunStepRow, part: dict[str, Any]) -> None:
        """`thread.run.step.delta` carrying one tool call's part (its `index` included)."""
        if self.watching(row.run_id):
            self.events.append((row.run_id, "thread.run.step.delta", json.dumps({
                "id": row.id, "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [part]}}},
                separators=(",", ":"))))

    def message(self, row: MessageRow, name: str | None = None) -> None:
        if row.run_id is not None and self.watching(row.run_id):
            self.events.append((row.run_id, name or f"thread.message.{row.status}",
                                Message.from_row(row).model_dump_json()))

    def error(self, run_id: str, message: str = SERVER_ERROR) -> None:
        """The wrapped form the SDK raises from in every mode (`openai.APIError`)."""
        self.add(run_id, "error", json.dumps({"error": {
            "message": message, "type": "server_error", "param": None, "code": None}}))

    def clear(self) -> None:
        self.events.clear()
        self.ended.clear()

    async def publish(self) -> None:
        """Hand the events to the bus, in order, a batch per run; call after the commit."""
        if self.bus is None or not self.events:
            return
        batch: list[tuple[str, str]] = []
        current = self.events[0][0]
        for run_id, name, data in self.events:
            if run_id != current:
                await self.bus.publish(current, batch, final=current in self.ended)
                batch, current = [], run_id
            batch.append((name, data))
        await self.bus.publish(current, batch, final=current in self.ended)
        self.clear()
