"""The file_search tool in runs: what the model is offered, the search it asks for, what it
is shown, and the `file_citation` annotations made from the markers it cites.

The model sees each result under a marker `【<call>:<result>†<filename>】` (the hosted
service's form) and is asked to copy the marker where it uses the result; `<call>` numbers the
run's searches, so markers stay unique across rounds. Markers the model writes that name a
result it was shown become annotations of the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.db.models import RunRow, VectorStoreRow
from assistants_server.retrieval.index import SearchIndex
from assistants_server.tokens import count_text
from assistants_server.toolbox.resources import resource_ids
from assistants_server.tools.base import Call, Entry, Found, Tool, ToolRound, unavailable
from assistants_server.tools.definitions import RANKER
from assistants_server.vector_stores.schemas import SearchResult
from assistants_server.vector_stores.search import (
    search_stores,
    unsearchable,
    wait_for_ingestion,
)

NAME = "file_search"
DEFAULT_MAX_RESULTS = 20
MARKER = re.compile(r"【(\d+):(\d+)†([^】\n]{0,256})】")

DEFINITION = {"type": "function", "function": {
    "name": NAME,
    "description": (
        "Search the files the user has provided. Returns excerpts, each under a marker like "
        "【0:1†report.pdf】. When your answer uses an excerpt, cite it by copying its marker "
        "right after the sentence that uses it."),
    "parameters": {"type": "object", "properties": {"queries": {
        "type": "array", "items": {"type": "string"},
        "description": "One or more search queries: the user's question, and rephrasings "
                       "or sub-questions that could find other relevant passages."}},
        "required": ["queries"]},
}}

Sources = Mapping[tuple[int, int], str]  # (call, result) -> file id


def queries_of(arguments: str) -> list[str]:
    """The model's queries; a model that sent plain text or a `query` string is understood."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return [arguments] if arguments.strip() else []
    if isinstance(parsed, dict):
        value = parsed.get("queries", parsed.get("query", []))
        items = value if isinstance(value, list) else [value]
        return [str(q) for q in items if str(q).strip()][:5]
    return []


async def run_file_search(
    session: AsyncSession, index: SearchIndex, run: RunRow, call_id: str, arguments: str,
    ordinal: int, budget_tokens: int | None = None,
) -> dict[str, Any]:
    """Search the run's stores (the assistant's and the thread's); the step's tool call entry,
    with what the model is shown under `_model`. `budget_tokens` bounds the excerpts shown,
    best first, so a small context window is not filled by one search."""
    options = next((t.get("file_search") or {} for t in run.tools if t["type"] == NAME), {})
    ranking = options.get("ranking_options") or {}
    threshold = float(ranking.get("score_threshold", 0.0))
    limit = int(options.get("max_num_results") or DEFAULT_MAX_RESULTS)
    queries = queries_of(arguments)
    stores = await _stores(session, run)
    results = await search_stores(session, index, stores, queries, max_results=limit,
                                  score_threshold=threshold) if queries else []
    shown = [{"file_id": r.file_id, "file_name": r.filename, "score": r.score,
              "content": r.content} for r in _within(results, budget_tokens)]
    missed = await unsearchable(session, [store.id for store in stores]) if stores else []
    return {"id": call_id, "type": NAME,
            "file_search": {"ranking_options": {"ranker": RANKER, "score_threshold": threshold},
                            "results": shown},
            "_model": {"name": NAME, "arguments": arguments,
                       "output": _output(queries, shown, ordinal, bool(stores)) + _missed(missed),
                       "sources": [r["file_id"] for r in shown], "ordinal": ordinal}}


def _within(results: list[SearchResult], budget: int | None) -> list[SearchResult]:
    kept: list[SearchResult] = []
    used = 0
    for result in results:
        used += count_text(result.content[0]["text"])
        if budget is not None and kept and used > budget:
            break
        kept.append(result)
    return kept


async def _stores(session: AsyncSession, run: RunRow) -> list[VectorStoreRow]:
    ids = await resource_ids(session, run, NAME, "vector_store_ids")
    if not ids:
        return []
    return list(await session.scalars(select(VectorStoreRow).where(VectorStoreRow.id.in_(ids))))


def _output(queries: list[str], results: list[dict[str, Any]], ordinal: int,
            has_stores: bool) -> str:
    if not has_stores:
        return "No files are available to search."
    if not results:
        return f"No results found for: {'; '.join(queries) or '(no query)'}."
    parts = [f"【{ordinal}:{i}†{r['file_name']}】\n{r['content'][0]['text']}"
             for i, r in enumerate(results)]
    return "\n\n".join(parts)


def sources_of(call: Mapping[str, Any]) -> dict[tuple[int, int], str]:
    model = call.get("_model") or {}
    if call.get("type") != NAME or "ordinal" not in model:
        return {}
    return {(model["ordinal"], i): file_id for i, file_id in enumerate(model["sources"])}


def citations(text: str, sources: Sources, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """`file_citation` annotations for the known markers in `text` from `start` on, and where
    the last complete marker ends (`start` if none: a marker being written is seen again)."""
    found = []
    for match in MARKER.finditer(text, start):
        start = match.end()
        file_id = sources.get((int(match[1]), int(match[2])))
        if file_id is not None:
            found.append({"type": "file_citation", "text": match[0],
                          "start_index": match.start(), "end_index": match.end(),
                          "file_citation": {"file_id": file_id}})
    return found, start


RESULT_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def _missed(files: list[tuple[str, str, str]]) -> str:
    """What the model must know to not answer "nothing found" about files it never saw."""
    if not files:
        return ""
    lines = [f"- {name} ({file_id}): {why}" for file_id, name, why in files]
    return "\n\nThese files could not be searched, so their content is not above:\n" + \
        "\n".join(lines)


class FileSearch(Tool):
    type = NAME
    includes = frozenset({RESULT_CONTENT})

    async def offer(self, definition: dict[str, Any], session: AsyncSession,
                    run: RunRow) -> dict[str, Any]:
        return DEFINITION

    async def execute(self, call: Call, round_: ToolRound) -> Entry:
        """Search once the stores' files being indexed are done (a file attached to the
        message just sent), or the wait's bound has passed, as the hosted service did."""
        index = round_.services.index
        if index is None:
            return unavailable(call)
        async with round_.sessionmaker() as session:
            ids = await resource_ids(session, round_.run, NAME, "vector_store_ids")
        await wait_for_ingestion(round_.sessionmaker, ids,
                                 round_.services.ingestion_wait_seconds)
        async with round_.sessionmaker() as session:
            entry = await run_file_search(
                session, index, round_.run, call["id"], call["arguments"], round_.searches,
                budget_tokens=round_.context_window // 4)
            await session.commit()
        round_.searches += 1
        return entry

    def public(self, entry: Entry, include: frozenset[str]) -> Entry:
        """Results without their content unless `include[]` asked for it."""
        shown = super().public(entry, include)
        if RESULT_CONTENT not in include:
            search = shown[NAME]
            shown[NAME] = {**search, "results": [
                {k: v for k, v in result.items() if k != "content"}
                for result in search.get("results", [])]}
        return shown

    def remember(self, entry: Entry, found: Found) -> None:
        found.sources.update(sources_of(entry))
        found.searches += 1

    def annotate(self, text: str, found: Found, start: int,
                 final: bool) -> tuple[list[dict[str, Any]], int]:
        if not found.sources:
            return [], start
        return citations(text, found.sources, start)
