"""The built-in tools (function, file_search, code_interpreter), each one module on the Tool
seam of tools/base.py."""

from __future__ import annotations

from assistants_server.toolbox.code_interpreter import CodeInterpreter
from assistants_server.toolbox.file_search import FileSearch
from assistants_server.toolbox.function import Function
from assistants_server.tools.registry import register


def register_builtins() -> None:
    """Offer the built-in tools (create_app does, once per process)."""
    for tool in (Function(), FileSearch(), CodeInterpreter()):
        register(tool)
