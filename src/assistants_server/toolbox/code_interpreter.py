"""The code_interpreter tool in runs: what the model is offered, its code relayed as it is
written, the execution in the thread's sandbox session, and what comes back.

The thread's files (the assistant's and the thread's `code_interpreter.file_ids`, message
attachments included) are placed in the session's /mnt/data before the code runs. Figures
become `image` outputs saved as files (purpose `assistants_output`) and `image_file` parts of
the next message; files the code writes are saved the same way, and the answer's
`sandbox:/mnt/data/...` links to them become `file_path` annotations.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.db.models import RunRow
from assistants_server.sandbox import WORK_DIR, ExecutionResult, SandboxError
from assistants_server.toolbox.sandbox_files import (
    file_names,
    model_output,
    outputs_of,
    place_files,
    save_outputs,
)
from assistants_server.tools.base import (
    MODEL_ONLY,
    Call,
    Entry,
    Found,
    Tool,
    ToolRound,
    unavailable,
)

log = logging.getLogger(__name__)
NAME = "code_interpreter"
# A link ends at whitespace, a bracket or quote, or a citation marker; trailing punctuation
# belongs to the sentence.
LINK = re.compile(r"sandbox:/mnt/data/[^\s)\]\"'<>`【]*[^\s)\]\"'<>`【.,;:!?]")


def offered(files: list[str]) -> dict[str, Any]:
    """The tool as the model is offered it, naming the files it can open."""
    listing = ("Files available: " + ", ".join(f"{WORK_DIR}/{name}" for name in files) + "."
               if files else "")
    return {"type": "function", "function": {
        "name": NAME,
        "description": (
            "Run Python code in a stateful session (variables persist between calls) with "
            f"working directory {WORK_DIR} and no internet access. Printed output and the "
            "value of the last expression are returned; matplotlib figures are shown to the "
            f"user. Save files for the user under {WORK_DIR} and link them in your answer as "
            f"sandbox:{WORK_DIR}/<name>. {listing}").strip(),
        "parameters": {"type": "object", "properties": {"code": {
            "type": "string", "description": "The Python code to run."}},
            "required": ["code"]},
    }}


def code_of(arguments: str) -> str:
    """The code of a call: `{"code": ...}` as asked, or the raw text a model sent instead."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return arguments
    if isinstance(parsed, dict):
        return str(parsed.get("code", parsed.get("input", "")))
    return arguments


class CodeInput:
    """Decodes the `code` string out of a call's arguments as their fragments arrive, so the
    code can be streamed as `code_interpreter.input` deltas while the model writes it."""

    _OPENING = re.compile(r'"code"\s*:\s*"')

    def __init__(self) -> None:
        self._raw = ""
        self._start: int | None = None  # where the string's content begins in _raw
        self._done = 0  # raw characters of the content already decoded
        self._closed = False

    def feed(self, fragment: str) -> str:
        self._raw += fragment
        if self._closed:
            return ""
        if self._start is None:
            opening = self._OPENING.search(self._raw)
            if opening is None:
                return ""
            self._start = opening.end()
        content = self._raw[self._start + self._done:]
        end = self._safe_end(content)
        piece = content[:end]
        self._done += end
        if end < len(content) and content[end] == '"':
            self._closed = True
        try:
            return str(json.loads(f'"{piece}"'))
        except ValueError:
            return ""

    @staticmethod
    def _safe_end(content: str) -> int:
        """How much of `content` decodes whole: up to the closing quote, never cutting an
        escape sequence."""
        i = 0
        while i < len(content):
            char = content[i]
            if char == '"':
                return i
            if char == "\\":
                width = 6 if content[i + 1:i + 2] == "u" else 2
                if i + width > len(content):
                    return i
                i += width
                continue
            i += 1
        return i


def file_paths(text: str, paths: Mapping[str, str], start: int = 0,
               final: bool = True) -> list[dict[str, Any]]:
    """`file_path` annotations for links to saved files in `text` from `start` on; unless
    `final`, a link at the very end may still be growing and waits."""
    found = []
    for match in LINK.finditer(text, start):
        if not final and match.end() == len(text):
            break
        file_id = paths.get(match[0])
        if file_id:  # not a file past what an execution may save
            found.append({"type": "file_path", "text": match[0], "start_index": match.start(),
                          "end_index": match.end(), "file_path": {"file_id": file_id}})
    return found


class CodeInterpreter(Tool):
    type = NAME

    async def offer(self, definition: dict[str, Any], session: AsyncSession,
                    run: RunRow) -> dict[str, Any]:
        return offered(await file_names(session, run))

    def entry(self, call: Call, complete: bool = True) -> Entry:
        code = code_of(call["arguments"]) if complete else ""
        return {"id": call["id"], "type": NAME,
                "code_interpreter": {"input": code, "outputs": []}}

    def deltas(self, slot: int, call: Call, fragment: str, state: dict[str, Any],
               name: str | None = None) -> list[dict[str, Any]]:
        """The code relayed as `input` deltas while the model writes it."""
        parts = [] if state else [{"index": slot, **self.entry(call, complete=False)}]
        piece = state.setdefault("input", CodeInput()).feed(fragment)
        if piece:
            parts.append({"index": slot, "type": NAME, NAME: {"input": piece}})
        return parts

    async def execute(self, call: Call, round_: ToolRound) -> Entry:
        sandbox, blobs, run = round_.services.sandbox, round_.services.blobs, round_.run
        if sandbox is None or blobs is None:
            return unavailable(call)
        code = code_of(call["arguments"])
        try:
            await place_files(round_.sessionmaker, sandbox, blobs, run)
            result = await sandbox.execute(run.thread_id, code)
        except SandboxError as exc:
            log.warning("code of run %s could not run: %s", run.id, exc)
            result = ExecutionResult(logs="", error=f"The code could not run: {exc}",
                                     restarted=True)
        images, paths = await save_outputs(round_.sessionmaker, sandbox, blobs, run.thread_id,
                                           result)
        return {"id": call["id"], "type": NAME,
                "code_interpreter": {"input": code, "outputs": outputs_of(result, images)},
                MODEL_ONLY: {"name": NAME, "arguments": call["arguments"],
                             "output": model_output(result, images, paths),
                             "images": images, "paths": paths}}

    def output_deltas(self, slot: int, entry: Entry) -> list[dict[str, Any]]:
        """The outputs as a delta, before the step's completion shows them all."""
        outputs = entry[NAME].get("outputs")
        if not outputs:
            return []
        return [{"index": slot, "type": NAME, NAME: {
            "outputs": [{"index": i, **output} for i, output in enumerate(outputs)]}}]

    def remember(self, entry: Entry, found: Found) -> None:
        model = entry.get(MODEL_ONLY) or {}
        found.paths.update(model.get("paths") or {})
        found.images += model.get("images") or []

    def annotate(self, text: str, found: Found, start: int,
                 final: bool) -> tuple[list[dict[str, Any]], int]:
        if not found.paths:
            return [], start
        links = file_paths(text, found.paths, start, final=final)
        return links, (links[-1]["end_index"] if links else start)
