"""The tools this server offers, by type. Adding a tool: one module with a `Tool` subclass,
and one `register` call (toolbox/__init__.py registers the built-in ones at start)."""

from __future__ import annotations

from assistants_server.tools.base import Tool

_TOOLS: dict[str, Tool] = {}


def register(tool: Tool) -> Tool:
    """Offer `tool` under its type (replacing one registered before under it)."""
    _TOOLS[tool.type] = tool
    return tool


def unregister(type_: str) -> None:
    _TOOLS.pop(type_, None)


def tool_for(type_: str) -> Tool:
    """The tool of a call or an entry; a type no longer offered (a tool removed since the
    step was written) is shown as a server tool with nothing to show."""
    return _TOOLS.get(type_) or _Unknown(type_)


def is_registered(type_: str) -> bool:
    return type_ in _TOOLS


def server_types() -> frozenset[str]:
    """The types of the tools the server runs itself."""
    return frozenset(type_ for type_, tool in _TOOLS.items() if tool.server)


def includes() -> frozenset[str]:
    """What `include[]` may ask for: the registered tools' parts."""
    return frozenset().union(*(tool.includes for tool in _TOOLS.values()))


class _Unknown(Tool):
    def __init__(self, type_: str) -> None:
        self.type = type_  # type: ignore[misc]
