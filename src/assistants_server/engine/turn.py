"""One turn of a run: what the model says, relayed to the run's stream as it comes and kept
in memory until the turn's outcome is written.

The rows it builds (message, message_creation step, tool_calls step) stay out of any session
until then; their snapshots are what the stream shows. Calls of server tools (file_search)
are shown as their own tool types, and the markers the model copies from search results
become `file_citation` annotations, streamed as soon as a marker is complete.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import inspect

from assistants_server.backends.chat import ChatEvent, Finish, TextDelta, ToolCallDelta, Usage
from assistants_server.db.models import MessageRow, RunRow, RunStepRow
from assistants_server.db.states import (
    IN_PROGRESS,
    transition_message,
    transition_step,
)
from assistants_server.events.bus import EventBus
from assistants_server.kit.ids import new_id
from assistants_server.runs.outbox import Outbox
from assistants_server.tools.base import Call, Found
from assistants_server.tools.registry import server_types, tool_for

T = TypeVar("T", MessageRow, RunStepRow)
NO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


class Turn:
    def __init__(
        self, run: RunRow, bus: EventBus | None, found: Found | None = None,
    ) -> None:
        """`found`: what the run's earlier tool rounds left for this answer."""
        self.run_id, self.thread_id, self.assistant_id = run.id, run.thread_id, run.assistant_id
        # The run as last committed by this process (detached): written next without a read.
        self.known: RunRow | None = run
        self.expires_at = run.expires_at
        self.bus = bus
        self.server_tools = server_types() & {tool["type"] for tool in run.tools}
        self.found = found or Found()
        self.searches = self.found.searches  # file_search calls of earlier rounds
        self.images = self.found.images  # figures shown before the text, as image_file parts
        # The tools whose annotations the answer may carry, and where each scans next.
        self._annotators = {tool["type"]: 0 for tool in run.tools}
        self.text = ""
        self._cited = 0  # annotations already streamed
        self._states: dict[int, dict[str, Any]] = {}  # each call's, kept by its tool
        self.calls: list[Call] = []
        self._slots: dict[int, int] = {}  # backend tool-call index -> our dense index
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.message: MessageRow | None = None
        self.message_step: RunStepRow | None = None
        self.tool_step: RunStepRow | None = None
        self.message_closed = False  # closed mid-turn, when tool calls began
        self._message_live = False  # its created event reached the stream, so deltas may
        self._announced = False  # its created events were published mid-turn
        self._tools_live = False
        self.written = False  # its rows are in the database (its server tools are running)
        # The answer's message and step with their created events, built ahead (`prepare`).
        self._ready: tuple[MessageRow, RunStepRow, Outbox] | None = None

    def prepare(self) -> None:
        """Before the model's first event: build the message an answer would go into, its
        step, and their created events, so that a first token goes out with nothing left to
        build. Only for a run being streamed; unused if the model calls tools instead."""
        if self.message is not None or self.bus is None or not self.bus.watching(self.run_id):
            return
        message, step = self._message_rows(int(time.time()))
        outbox = Outbox(self.bus)
        self._announce(outbox, message, step)
        self._ready = (message, step, outbox)

    async def add(self, event: ChatEvent) -> None:
        if isinstance(event, TextDelta):
            await self._text(event.text)
        elif isinstance(event, ToolCallDelta):
            await self._tool_call(event)
        elif isinstance(event, Finish):
            self.finish = event.reason
        elif isinstance(event, Usage):
            self.usage = event

    async def _text(self, text: str) -> None:
        # Models do not write text after tool calls in one answer; if one did, the message
        # that was already completed on the stream stays as it was shown.
        if not text or self.message_closed or self.tool_step is not None:
            return
        if self.message is None:
            if self._ready is not None:
                (self.message, self.message_step, outbox), self._ready = self._ready, None
            else:
                outbox = Outbox(self.bus)
                self._new_message(int(time.time()))
                self._announce_message(outbox)
            self._announced = True
            self._message_live = bool(outbox.events)
            await outbox.publish()
            if self.images and self._message_live:
                await self._delta(self._image_parts())
        first = not self.text
        self.text += text
        annotated = self._new_annotations(text)
        if not self._message_live or self.bus is None:
            return
        index = len(self.images)
        if annotated:
            # The annotations ride with the text that completed them, so handlers that
            # print `delta.value` never see a delta without one.
            await self._delta([{"index": index, "type": "text",
                                "text": {"value": text, "annotations": annotated}}])
            return
        part: dict[str, Any] = {"value": text}
        if first:
            part["annotations"] = []  # only in the first delta, as the service sent them
        await self._delta([{"index": index, "type": "text", "text": part}])

    async def _delta(self, parts: list[dict[str, Any]]) -> None:
        assert self.message is not None and self.bus is not None
        await self.bus.publish(self.run_id, [("thread.message.delta", json.dumps({
            "id": self.message.id, "object": "thread.message.delta",
            "delta": {"content": parts}}, separators=(",", ":")))])

    def _image_parts(self) -> list[dict[str, Any]]:
        return [{"index": i, "type": "image_file", "image_file": {"file_id": file_id}}
                for i, file_id in enumerate(self.images)]

    def _new_annotations(self, text: str) -> list[dict[str, Any]]:
        """Annotations completed by the latest text (citation markers, links to saved
        files), numbered on from the last; a marker or link still being written waits."""
        found = []
        for type_, start in self._annotators.items():
            annotations, self._annotators[type_] = tool_for(type_).annotate(
                self.text, self.found, start, final=False)
            found += annotations
        found.sort(key=lambda annotation: int(annotation["start_index"]))
        numbered = [{"index": self._cited + i, **annotation}
                    for i, annotation in enumerate(found)]
        self._cited += len(found)
        return numbered

    async def _tool_call(self, delta: ToolCallDelta) -> None:
        outbox = Outbox(self.bus)
        now = int(time.time())
        if self.message is not None and not self.message_closed:
            self.close_message(now, outbox)
            self.message_closed = True
        if self.tool_step is None:
            self.tool_step = self._step("tool_calls", now, {"type": "tool_calls",
                                                            "tool_calls": []})
            outbox.step(self.tool_step, self.expires_at, "thread.run.step.created")
            outbox.step(self.tool_step, self.expires_at, "thread.run.step.in_progress")
            self._tools_live = bool(outbox.events)
        slot = self._slots.get(delta.index)
        name = None
        if slot is None:
            slot = self._slots[delta.index] = len(self.calls)
            kind = delta.name if delta.name in self.server_tools else "function"
            call = {"id": delta.id or new_id("call_"), "type": kind, "name": delta.name or "",
                    "arguments": delta.arguments}
            self.calls.append(call)
        else:
            call = self.calls[slot]
            call["arguments"] += delta.arguments
            if delta.name and not call["name"]:
                call["name"] = name = delta.name
        parts = tool_for(call["type"]).deltas(
            slot, call, delta.arguments, self._states.setdefault(slot, {}), name)
        if self._tools_live:
            for part in parts:
                outbox.tool_call_delta(self.tool_step, part)
        await outbox.publish()

    def _new_message(self, now: int) -> None:
        self.message, self.message_step = self._message_rows(now)

    def _message_rows(self, now: int) -> tuple[MessageRow, RunStepRow]:
        message = MessageRow(
            id=new_id("msg_"), created_at=now, thread_id=self.thread_id, role="assistant",
            content=[], status=IN_PROGRESS, assistant_id=self.assistant_id,
            run_id=self.run_id, attachments=[], metadata_={})
        return message, self._step("message_creation", now, {
            "type": "message_creation", "message_creation": {"message_id": message.id}})

    def _announce_message(self, outbox: Outbox) -> None:
        assert self.message is not None and self.message_step is not None
        self._announce(outbox, self.message, self.message_step)

    def _announce(self, outbox: Outbox, message: MessageRow, step: RunStepRow) -> None:
        """The step's and the message's created and in_progress events (still empty)."""
        outbox.step(step, self.expires_at, "thread.run.step.created")
        outbox.step(step, self.expires_at, "thread.run.step.in_progress")
        outbox.message(message, "thread.message.created")
        outbox.message(message, "thread.message.in_progress")

    def _step(self, kind: str, now: int, details: dict[str, Any]) -> RunStepRow:
        return RunStepRow(
            id=new_id("step_"), created_at=now, run_id=self.run_id, thread_id=self.thread_id,
            assistant_id=self.assistant_id, type=kind, status=IN_PROGRESS,
            step_details=details, usage=None, metadata_={})

    def close_message(self, now: int, outbox: Outbox) -> None:
        """The message and its step completed (the turn goes on with tool calls)."""
        assert self.message is not None and self.message_step is not None
        self.message.content = self._content()
        transition_message(self.message, "completed", now)
        transition_step(self.message_step, "completed", now)
        self.message_step.usage = dict(NO_USAGE)
        outbox.message(self.message)
        outbox.step(self.message_step, self.expires_at)

    def _content(self) -> list[dict[str, Any]]:
        annotations = []
        for type_ in self._annotators:
            annotations += tool_for(type_).annotate(self.text, self.found, 0, final=True)[0]
        annotations.sort(key=lambda annotation: int(annotation["start_index"]))
        images = [{"type": "image_file", "image_file": {"file_id": file_id}}
                  for file_id in self.images]
        return [*images, {"type": "text", "text": {"value": self.text,
                                                    "annotations": annotations}}]

    def rows(self, now: int, outbox: Outbox, *, answered: bool) -> TurnRows:
        """The turn's rows to write, as they stand: new objects each time, so that an attempt
        rolled back (and the statuses `end_run` gave them) leaves nothing behind; open ones
        are in_progress for `end_run` to close. `answered`: the model finished, so even an
        empty answer is a message."""
        if self.message is None and answered and not self.calls:
            self._new_message(now)  # an empty answer: announced below, in this attempt's events
        rows = TurnRows()
        if self.message is not None and self.message_step is not None:
            if not self.message_closed and not self._announced:
                # Each attempt's events go out only if it commits.
                self._announce_message(outbox)
            rows.message, rows.message_step = _copy(self.message), _copy(self.message_step)
            if not self.message_closed:
                rows.message.content = self._content()
        if self.tool_step is not None:
            rows.tool_step = _copy(self.tool_step)
            rows.tool_step.step_details = {"type": "tool_calls", "tool_calls": [
                tool_for(call["type"]).entry(call) for call in self.calls]}
        return rows

    def tool_calls(self) -> list[dict[str, Any]]:
        """The calls the client must answer (`required_action`): the function calls."""
        return [{"id": call["id"], "type": "function",
                 "function": {"name": call["name"], "arguments": call["arguments"]}}
                for call in self.calls if call["type"] == "function"]

    def server_calls(self) -> list[dict[str, str]]:
        return [call for call in self.calls if call["type"] in self.server_tools]


@dataclass
class TurnRows:
    """A turn's rows as one attempt writes them."""

    message: MessageRow | None = None
    message_step: RunStepRow | None = None
    tool_step: RunStepRow | None = None

    @property
    def all(self) -> list[MessageRow | RunStepRow]:
        return [row for row in (self.message, self.message_step, self.tool_step)
                if row is not None]

    def still_open(self) -> tuple[list[MessageRow], list[RunStepRow]]:
        """What `end_run` closes."""
        return ([row for row in (self.message,) if row is not None
                 and row.status == IN_PROGRESS],
                [row for row in (self.message_step, self.tool_step) if row is not None
                 and row.status == IN_PROGRESS])


def _copy(row: T) -> T:
    """A new, unsaved row with `row`'s columns (its pk left for the database to give)."""
    columns = inspect(type(row)).column_attrs
    return type(row)(**{c.key: getattr(row, c.key) for c in columns if c.key != "pk"})
