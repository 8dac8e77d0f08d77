"""The Tool seam: what a tool says about itself, so that the engine dispatches without
knowing any tool.

A tool is one module with one `Tool` subclass, registered in `tools/registry.py`. It says how
the model is offered it (`offer`), how its calls show in a `tool_calls` step while the model
writes them (`entry`, `deltas`), how a call is executed by the server (`execute`; a tool with
`server = False` is handed to the client through `required_action` instead), how the outputs
show (`output_deltas`, `public` with what `include[]` exposes), what the model is shown of a
finished call on its next turn (`replay`), and what a call leaves for the answer that follows
(`remember`, then `annotate` for the answer's annotations).

A call is the model's: `{"id", "type", "name", "arguments"}`; an entry is the step's
`tool_calls[]` item, with what only the model sees under `_model` (never shown to clients).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from assistants_server.db.models import RunRow
    from assistants_server.files.blobs import BlobStore
    from assistants_server.retrieval.index import SearchIndex
    from assistants_server.sandbox import Sandbox

Call = dict[str, str]
Entry = dict[str, Any]
MODEL_ONLY = "_model"  # an entry's part that only the model sees


@dataclass(frozen=True)
class ToolServices:
    """What server tools use; a tool whose service is missing tells the model so."""

    index: SearchIndex | None = None
    sandbox: Sandbox | None = None
    blobs: BlobStore | None = None
    # How long a search waits for its stores' files still being indexed.
    ingestion_wait_seconds: float = 60.0


@dataclass
class ToolRound:
    """One round of server tool calls: the services, and what the calls may take."""

    sessionmaker: async_sessionmaker[AsyncSession]
    services: ToolServices
    run: RunRow  # as the turn that made the calls committed it
    context_window: int  # of the model: one search's excerpts take a quarter at most
    searches: int = 0  # file_search calls of the run so far: numbers the next one's markers


@dataclass
class Found:
    """What the run's finished tool calls left for its answer."""

    sources: dict[tuple[int, int], str] = field(default_factory=dict)  # search markers
    searches: int = 0
    paths: dict[str, str] = field(default_factory=dict)  # saved files by `sandbox:` link
    images: list[str] = field(default_factory=list)  # figures to show before the text


class Tool:
    """A tool's behaviour; the defaults are those of a server tool with nothing to show."""

    type: ClassVar[str]
    server: ClassVar[bool] = True  # executed here; False: handed to the client
    includes: ClassVar[frozenset[str]] = frozenset()  # what `include[]` may ask of it
    # The wire model of the tool's entry in `tools[]`, for a tool added to the built-in ones
    # (whose models are in tools/definitions.py).
    definition: ClassVar[builtins.type[BaseModel] | None] = None

    async def offer(self, definition: dict[str, Any], session: AsyncSession,
                    run: RunRow) -> dict[str, Any]:
        """The tool as the model is offered it: a Chat Completions `tools` entry."""
        raise NotImplementedError

    def entry(self, call: Call, complete: bool = True) -> Entry:
        """The call as its step shows it before it has an output (`complete`: all its
        arguments are there)."""
        return {"id": call["id"], "type": self.type, self.type: {}}

    def deltas(self, slot: int, call: Call, fragment: str, state: dict[str, Any],
               name: str | None = None) -> list[dict[str, Any]]:
        """Step delta parts for a fragment of the call's arguments (the call's first fragment
        when `state` is still empty; `name`: a name that arrived with it). `state`: this
        call's, kept by the engine between fragments."""
        if state:
            return []  # the arguments are the model's business, not shown
        state["opened"] = True
        return [{"index": slot, **self.entry(call, complete=False)}]

    async def execute(self, call: Call, round_: ToolRound) -> Entry:
        """Run the call; its entry with the outputs clients see and, under `_model`, what
        the model is shown."""
        return unavailable(call)

    def output_deltas(self, slot: int, entry: Entry) -> list[dict[str, Any]]:
        """Step delta parts showing the outputs before the step completes."""
        return []

    def public(self, entry: Entry, include: frozenset[str]) -> Entry:
        """The entry as clients see it; `include`: the run's `include[]`."""
        return {key: value for key, value in entry.items() if key != MODEL_ONLY}

    def replay(self, entry: Entry) -> dict[str, str]:
        """The finished call as the model made it, with its output:
        `{"id", "name", "arguments", "output"}`."""
        model = entry.get(MODEL_ONLY) or {}
        return {"id": entry["id"], "name": model.get("name", self.type),
                "arguments": model.get("arguments", "{}"), "output": model.get("output", "")}

    def remember(self, entry: Entry, found: Found) -> None:
        """Add what a finished call leaves for the answer to `found`."""

    def annotate(self, text: str, found: Found, start: int,
                 final: bool) -> tuple[list[dict[str, Any]], int]:
        """Annotations of the answer's `text` from `start` on, and where the next scan
        starts; unless `final`, something still being written waits."""
        return [], start


def unavailable(call: Call) -> Entry:
    """The entry of a call whose tool cannot run on this server."""
    return {"id": call["id"], "type": call["type"], call["type"]: {},
            MODEL_ONLY: {"name": call["name"], "arguments": call["arguments"],
                         "output": f"The {call['type']} tool is not available on this server."}}
