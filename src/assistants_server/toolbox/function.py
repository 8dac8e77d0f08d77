"""The function tool: offered as the assistant defined it, its calls handed to the client
through `required_action`, its outputs those the client submitted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assistants_server.tools.base import Call, Entry, Tool

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from assistants_server.db.models import RunRow


class Function(Tool):
    type = "function"
    server = False

    async def offer(self, definition: dict[str, Any], session: AsyncSession,
                    run: RunRow) -> dict[str, Any]:
        return {"type": "function", "function": definition["function"]}

    def entry(self, call: Call, complete: bool = True) -> Entry:
        return {"id": call["id"], "type": "function", "function": {
            "name": call["name"], "arguments": call["arguments"], "output": None}}

    def deltas(self, slot: int, call: Call, fragment: str, state: dict[str, Any],
               name: str | None = None) -> list[dict[str, Any]]:
        if not state:
            state["opened"] = True
            return [{"index": slot, **self.entry(call, complete=False)}]
        # Only the new fragment: the SDK concatenates strings, so nothing is re-sent.
        function: dict[str, str] = {"arguments": fragment}
        if name:
            function["name"] = name
        return [{"index": slot, "type": "function", "function": function}]

    def replay(self, entry: Entry) -> dict[str, str]:
        function = entry["function"]
        return {"id": entry["id"], "name": function["name"],
                "arguments": function["arguments"], "output": function["output"] or ""}
