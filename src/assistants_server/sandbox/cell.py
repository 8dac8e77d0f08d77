"""Inside the sandbox: run one cell of user code the way a Jupyter kernel does. Variables live
in one `__main__` module across cells; the last expression's repr is displayed; an exception
becomes a short traceback of the cell's own frames; matplotlib figures shown or left open are
rendered to PNG and closed. Standard library only; matplotlib is touched only once the user
code imported it. Imports are kept few and cheap (no typing, dataclasses, importlib.abc):
each one is paid on every cold start."""

from __future__ import annotations

import ast
import importlib.machinery
import io
import linecache
import os
import sys
import types

from .wire import MAX_ERROR_CHARS, MAX_IMAGES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

MAX_TRACEBACK_FRAMES = 6


class CpuTimeExceeded(BaseException):
    """Raised into user code by SIGXCPU; a BaseException so `except Exception` won't eat it."""


class CellOutcome:
    __slots__ = ("display", "error", "images", "notes")

    def __init__(self) -> None:
        self.display: str | None = None
        self.error: str | None = None
        self.images: list[bytes] = []
        self.notes: list[str] = []


class Kernel:
    """The session's interpreter state: one namespace, a cell counter, the pyplot hook."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.module = types.ModuleType("__main__")
        # pickle and multiprocessing look functions up in sys.modules["__main__"].
        sys.modules["__main__"] = self.module
        self.count = 0
        self.outcome = CellOutcome()
        sys.meta_path.insert(0, _PyplotHook(self.capture_figures))

    def run(self, code: str) -> CellOutcome:
        self.count += 1
        self.outcome = outcome = CellOutcome()
        filename = f"<cell-{self.count}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        try:
            outcome.display = self._run(code, filename)
        except BaseException as exc:  # noqa: B036 - SystemExit, CPU limit: all are the cell's
            self._leave_if_forked(exc)
            outcome.error = format_error(exc, filename)
        else:
            self._leave_if_forked(None)
        try:
            self.capture_figures()
        except Exception as exc:
            outcome.notes.append(f"[figures could not be rendered: {exc!r}]")
        return outcome

    def _run(self, code: str, filename: str) -> str | None:
        tree = ast.parse(code, filename)
        last = None
        # Like Jupyter: a bare last expression is displayed, unless a ';' ends the cell.
        if tree.body and isinstance(tree.body[-1], ast.Expr) and not code.rstrip().endswith(";"):
            last = tree.body.pop()
        namespace = self.module.__dict__
        if tree.body:
            exec(compile(tree, filename, "exec"), namespace)
        if not isinstance(last, ast.Expr):
            return None
        value = eval(compile(ast.Expression(last.value), filename, "eval"), namespace)
        if value is None:
            return None
        namespace["_"] = value
        return repr(value)

    def _leave_if_forked(self, exc: BaseException | None) -> None:
        """A child the user code forked must not come back into the worker's loop: it would
        answer the server on the worker's pipe."""
        if os.getpid() == self.owner:
            return
        status = 0 if exc is None else 1
        if isinstance(exc, SystemExit):
            status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        os._exit(status)

    def capture_figures(self, *_: Any, **__: Any) -> None:
        """Render and close every open figure (also stands in for `plt.show`)."""
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is None:
            return
        outcome = self.outcome
        for number in plt.get_fignums():
            figure = plt.figure(number)
            if len(outcome.images) < MAX_IMAGES:
                buffer = io.BytesIO()
                figure.savefig(buffer, format="png", bbox_inches="tight")
                outcome.images.append(buffer.getvalue())
            else:
                outcome.notes.append(f"[figure {number} not shown: at most {MAX_IMAGES}]")
            plt.close(figure)


def format_error(exc: BaseException, filename: str) -> str:
    """The traceback from the cell's first frame on (the worker's frames are noise), its last
    few frames, ending with "ZeroDivisionError: division by zero"."""
    import traceback  # only errors need it

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb, limit=-MAX_TRACEBACK_FRAMES)
    text = "".join(lines).rstrip()
    if len(text) > MAX_ERROR_CHARS:
        text = "...\n" + text[-MAX_ERROR_CHARS:]
    return text


class _PyplotHook:
    """When user code imports matplotlib.pyplot, replace its `show` with figure capture (the
    Agg backend cannot show anything). Removes itself after that one import. A meta path
    finder by duck typing: importlib.abc would cost an import of importlib.resources."""

    def __init__(self, show: Any) -> None:
        self.show = show

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "matplotlib.pyplot":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module
        capture = self.show

        def show(*args: Any, **kwargs: Any) -> None:
            capture()  # a plain function: pyplot sets attributes (__signature__) on it

        def exec_module(module: types.ModuleType) -> None:
            original(module)
            module.show = show  # type: ignore[attr-defined]

        setattr(loader, "exec_module", exec_module)  # noqa: B010 - an instance, not the class
        return spec
