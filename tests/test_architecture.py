"""The source's shape: no import cycle between the server's packages, a kit that imports no
resource, and modules and functions short enough to read (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import assistants_server

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path(assistants_server.__file__).parent
MAX_MODULE_LINES = 310
MAX_FUNCTION_LINES = 60


def test_the_import_contracts_hold(monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)  # the contracts are in pyproject.toml
    assert lint_imports() == 0, capsys.readouterr().out


def _python_files() -> list[Path]:
    return [p for p in sorted(SOURCE.rglob("*.py")) if "migrations/versions" not in p.as_posix()]


def test_no_module_is_too_long() -> None:
    long = {p.relative_to(SOURCE).as_posix(): n for p in _python_files()
            if (n := p.read_text().count("\n")) > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_is_too_long() -> None:
    long = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SOURCE)}:{node.lineno} {node.name} {lines}")
    assert long == []
