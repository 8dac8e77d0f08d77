"""Fixtures for the search index: a session on the test's database, and a fake OpenAI-compatible
embeddings server on a loopback socket.

The fake embeds text as a bag of hashed words in which a small lexicon folds synonyms into one
feature ("reimbursement" and "refund" both become "refund"), so a paraphrase that shares no
word with a chunk still shares its features. It answers `app.state.failures` (HTTP statuses,
in order) before succeeding, lists its data in reverse order (clients must sort by index), and
keeps every request in `app.state.requests`.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistants_server.backends.embeddings import OpenAIEmbedder
from assistants_server.config import Settings
from assistants_server.db.engine import create_engine, create_sessionmaker
from tests.conftest import LiveServer

DIMENSIONS = 256
LEXICON = {  # keyed by the word without a plural "s", as fake_embedding folds it
    "reimbursement": "refund", "reimburse": "refund", "money": "refund", "back": "refund",
    "faulty": "damage", "broken": "damage", "damaged": "damage", "defective": "damage",
    "merchandise": "item", "good": "item", "product": "item",
}


def fake_embedding(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"[a-z]+", text.lower()):
        word = word[:-1] if word.endswith("s") and len(word) > 3 else word
        feature = LEXICON.get(word, word)
        vector[zlib.crc32(feature.encode()) % DIMENSIONS] += 1.0
    return vector


def create_embeddings_server() -> FastAPI:
    app = FastAPI()
    app.state.requests = []
    app.state.failures = []
    app.state.short = False  # answer one vector too few

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        body = await request.json()
        app.state.requests.append({"authorization": request.headers.get("authorization"),
                                   "model": body["model"], "input": body["input"]})
        if app.state.failures:
            status = app.state.failures.pop(0)
            return JSONResponse({"error": {"message": f"fake failure {status}"}},
                                status_code=status, headers={"retry-after": "0"})
        inputs = body["input"][:-1] if app.state.short else body["input"]
        data = [{"object": "embedding", "index": i, "embedding": fake_embedding(text)}
                for i, text in enumerate(inputs)]
        return {"object": "list", "model": body["model"], "data": data[::-1],
                "usage": {"prompt_tokens": 1, "total_tokens": 1}}

    return app


@pytest.fixture
def embeddings_server() -> Iterator[LiveServer]:
    with LiveServer(create_embeddings_server()) as server:
        yield server


@pytest.fixture
def embeddings_app(embeddings_server: LiveServer) -> Any:
    """The fake's app: `.state.requests`, `.state.failures`, `.state.short`."""
    return embeddings_server.server.config.app


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def embedder(embeddings_server: LiveServer, http: httpx.AsyncClient) -> OpenAIEmbedder:
    return OpenAIEmbedder(http, embeddings_server.url + "/v1", "fake-embed", "sk-embed",
                          backoff_seconds=0.0)


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def session(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session
