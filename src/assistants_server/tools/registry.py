"""The tools this server offers, by type. Adding a tool: one module with a `Tool` subclass,
and one `register` call (here for the built-in ones)."""

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
    _builtins()
    return _TOOLS.get(type_) or _Unknown(type_)


def is_registered(type_: str) -> bool:
    _builtins()
    return type_ in _TOOLS


def server_types() -> frozenset[str]:
    """The types of the tools the server runs itself."""
    _builtins()
    return frozenset(type_ for type_, tool in _TOOLS.items() if tool.server)


def includes() -> frozenset[str]:
    """What `include[]` may ask for: the registered tools' parts."""
    _builtins()
    return frozenset().union(*(tool.includes for tool in _TOOLS.values()))


class _Unknown(Tool):
    def __init__(self, type_: str) -> None:
        self.type = type_  # type: ignore[misc]


_loaded = False


def _builtins() -> None:
    """The built-in tools, registered on first use (their modules import much of the
    server, which must not be imported by this module's importers)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from assistants_server.tools.code_interpreter import CodeInterpreter
    from assistants_server.tools.file_search import FileSearch
    from assistants_server.tools.function import Function

    for tool in (Function(), FileSearch(), CodeInterpreter()):
        _TOOLS.setdefault(tool.type, tool)
