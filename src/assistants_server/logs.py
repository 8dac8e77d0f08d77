"""Logging: every line says which request, run and thread it is about.

The ids live in context variables, set where the work starts (the HTTP gate sets the request
id, the executor the run's), so every line written by that request or run, at any depth,
carries them without being passed down: in plain text as `[req_... run_...]` after the logger's
name, in JSON (`ASSISTANTS_LOG_FORMAT=json`, python-json-logger) as fields of their own. The
request id is the one the `x-request-id` header and every 500's message give users to quote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Literal

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
RUN_ID: ContextVar[str | None] = ContextVar("run_id", default=None)
THREAD_ID: ContextVar[str | None] = ContextVar("thread_id", default=None)
_IDS = (("request_id", REQUEST_ID), ("run_id", RUN_ID), ("thread_id", THREAD_ID))
TEXT_FORMAT = "%(levelname)s %(name)s%(ids)s: %(message)s"
JSON_FIELDS = ("asctime", "levelname", "name", "message", "request_id", "run_id", "thread_id")


def _with_ids(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """A record factory that also puts the context's ids on each record: as attributes, and
    together as `ids` (for the text format). A factory rather than a handler's filter, so
    every handler sees them, whoever installed it."""

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        present = []
        for name, variable in _IDS:
            value = variable.get()
            setattr(record, name, value)
            if value is not None:
                present.append(value)
        record.ids = f" [{' '.join(present)}]" if present else ""
        return record

    make.adds_ids = True  # type: ignore[attr-defined]
    return make


def configure(level: str, style: Literal["text", "json"] = "text") -> None:
    """Ids on every record; and, unless logging was set up already (a host application, the
    test runner, the command before a worker process), one handler on the root logger in
    `style`, which uvicorn's loggers pass their lines to (the CLI starts uvicorn with
    `log_config=None`)."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "adds_ids", False):
        logging.setLogRecordFactory(_with_ids(factory))
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    if style == "json":
        handler.setFormatter(JsonFormatter(
            list(JSON_FIELDS), rename_fields={"asctime": "time", "levelname": "level",
                                              "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
