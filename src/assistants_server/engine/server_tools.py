"""Running the tools the server executes itself (file_search, code_interpreter) when the
model calls them.

Each call becomes the step's tool-call entry: what clients see (results, outputs) and, under
`_model`, what the model is shown on its next round. No transaction is held while a tool
works: a search's reads and a sandbox execution happen outside the run's writes, and the files
an execution saves commit on their own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistants_server.db.models import RunRow
from assistants_server.files.blobs import BlobStore
from assistants_server.retrieval.index import SearchIndex
from assistants_server.sandbox import ExecutionResult, Sandbox, SandboxError
from assistants_server.tools import code_interpreter, file_search

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolServices:
    """What server tools need; a tool whose service is missing tells the model so."""

    index: SearchIndex | None = None
    sandbox: Sandbox | None = None
    blobs: BlobStore | None = None


async def execute_calls(
    sessionmaker: async_sessionmaker[AsyncSession], services: ToolServices, run: RunRow,
    calls: list[dict[str, str]], searches: int, context_window: int,
) -> list[dict[str, Any]]:
    """Step entries for `calls`, in order; `searches` numbers this run's earlier searches.
    `run`: as the turn that made the calls committed it (its tools and resources are read).
    One search's excerpts may take a quarter of the model's `context_window` at most."""
    entries = []
    for call in calls:
        if call["type"] == file_search.NAME and services.index is not None:
            async with sessionmaker() as session:
                entry = await file_search.run_file_search(
                    session, services.index, run, call["id"], call["arguments"], searches,
                    budget_tokens=context_window // 4)
                await session.commit()
            searches += 1
        elif call["type"] == code_interpreter.NAME and services.sandbox is not None:
            entry = await _run_code(sessionmaker, services, run, call)
        else:
            entry = {"id": call["id"], "type": call["type"], call["type"]: {},
                     "_model": {"name": call["name"], "arguments": call["arguments"],
                                "output": f"The {call['type']} tool is not available on this "
                                          "server."}}
        entries.append(entry)
    return entries


async def _run_code(
    sessionmaker: async_sessionmaker[AsyncSession], services: ToolServices, run: RunRow,
    call: dict[str, str],
) -> dict[str, Any]:
    assert services.sandbox is not None and services.blobs is not None
    code = code_interpreter.code_of(call["arguments"])
    try:
        await code_interpreter.place_files(sessionmaker, services.sandbox, services.blobs, run)
        result = await services.sandbox.execute(run.thread_id, code)
    except SandboxError as exc:
        log.warning("code of run %s could not run: %s", run.id, exc)
        result = ExecutionResult(logs="", error=f"The code could not run: {exc}",
                                 restarted=True)
    images, paths = await code_interpreter.save_outputs(
        sessionmaker, services.sandbox, services.blobs, run.thread_id, result)
    return {"id": call["id"], "type": code_interpreter.NAME,
            "code_interpreter": {"input": code,
                                 "outputs": code_interpreter.outputs_of(result, images)},
            "_model": {"name": code_interpreter.NAME, "arguments": call["arguments"],
                       "output": code_interpreter.model_output(result, images, paths),
                       "images": images, "paths": paths}}
