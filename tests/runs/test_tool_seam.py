"""Adding a tool is one module and one registration: a small `shout` tool, defined here, is
accepted in `tools[]` with its own options, offered to the model, executed by the server,
shown in the run's steps (streamed and polled) and fed back to the model, and gives the
answer annotations; nothing of the engine knows it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.db.models import RunRow
from assistants_server.kit.wire import WireModel
from assistants_server.tools.base import Call, Entry, Found, Tool, ToolRound
from assistants_server.tools.registry import register, unregister
from tests.fake_backend import Reply


class ShoutOptions(WireModel):
    suffix: str = "!"


class ShoutDefinition(WireModel):
    type: Literal["shout"] = "shout"
    shout: ShoutOptions | None = None


class Shout(Tool):
    """Upper-cases a text; the answer's `LOUD(...)` markers become annotations."""

    type = "shout"
    definition = ShoutDefinition

    async def offer(self, definition: dict[str, Any], session: AsyncSession,
                    run: RunRow) -> dict[str, Any]:
        return {"type": "function", "function": {
            "name": "shout", "description": "Upper-case a text.",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}}

    async def execute(self, call: Call, round_: ToolRound) -> Entry:
        options = next(t.get("shout") or {} for t in round_.run.tools if t["type"] == "shout")
        loud = json.loads(call["arguments"])["text"].upper() + options.get("suffix", "!")
        return {"id": call["id"], "type": "shout", "shout": {"output": loud},
                "_model": {"name": "shout", "arguments": call["arguments"],
                           "output": f"LOUD({loud})"}}

    def remember(self, entry: Entry, found: Found) -> None:
        found.paths[entry["shout"]["output"]] = "shouted"

    def annotate(self, text: str, found: Found, start: int,
                 final: bool) -> tuple[list[dict[str, Any]], int]:
        spans = [m for m in re.finditer(r"LOUD\(([^)]*)\)", text, start)
                 if m[1] in found.paths]
        return ([{"type": "file_path", "text": m[0], "start_index": m.start(),
                  "end_index": m.end(), "file_path": {"file_id": "file-shouted"}}
                 for m in spans], spans[-1].end() if spans else start)


@pytest.fixture(autouse=True)
def shout() -> Iterator[None]:
    register(Shout())
    yield
    unregister("shout")


def test_a_registered_tool_runs_through_the_engine(
    sdk: Any, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    assistant = sdk.beta.assistants.create(
        model="fake-model", tools=[{"type": "shout", "shout": {"suffix": "!!"}}])
    assert assistant.tools[0].type == "shout"
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Say hi loudly."}])
    script += [Reply(tool_calls=[{"id": "call_1", "name": "shout",
                                  "arguments": json.dumps({"text": "hi"})}]),
               Reply(text="Here: LOUD(HI!!)")]
    with sdk.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        events = [event.event for event in stream]
        final = stream.get_final_messages()
    assert "thread.run.step.completed" in events and events[-1] == "thread.run.completed"
    assert [t["function"]["name"] for t in sent[0]["tools"]] == ["shout"]
    assert sent[1]["messages"][-1] == {"role": "tool", "tool_call_id": "call_1",
                                       "content": "LOUD(HI!!)"}
    text = final[0].content[0].text
    assert text.value == "Here: LOUD(HI!!)"
    assert [(a.type, a.text) for a in text.annotations] == [("file_path", "LOUD(HI!!)")]
    run_id = final[0].run_id
    # Read as JSON: an SDK parses a tool type it does not know differently across versions.
    raw = sdk.beta.threads.runs.steps.with_raw_response.list(
        thread_id=thread.id, run_id=run_id, order="asc")
    (call,) = json.loads(raw.text)["data"][0]["step_details"]["tool_calls"]
    assert call == {"id": "call_1", "type": "shout", "shout": {"output": "HI!!"}}


def test_a_registered_tool_validates_its_own_definition(sdk: Any) -> None:
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.assistants.create(model="fake-model",
                                   tools=[{"type": "shout", "shout": {"volume": 11}}])
    assert "volume" in caught.value.message
    with pytest.raises(openai.BadRequestError):
        sdk.beta.assistants.create(model="fake-model", tools=[{"type": "whisper"}])
