"""OpenAIEmbedder against a fake /embeddings server on loopback: batching, order, retries on 429
and 5xx, the bearer key, and errors that say what went wrong; embedder_from reads the settings."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import numpy as np
import pytest

from assistants_server.backends.embeddings import (
    EmbeddingError,
    OpenAIEmbedder,
    embedder_from,
)
from tests.conftest import LiveServer
from tests.retrieval.conftest import fake_embedding


async def test_inputs_go_out_in_batches_and_vectors_come_back_in_input_order(
    embedder: OpenAIEmbedder, embeddings_app: Any
) -> None:
    texts = [f"text number {i} about topic{i % 7}" for i in range(150)]

    vectors = await embedder.embed(texts)

    assert [len(r["input"]) for r in embeddings_app.state.requests] == [64, 64, 22]
    assert [t for r in embeddings_app.state.requests for t in r["input"]] == texts
    assert vectors.dtype == np.float32 and vectors.shape == (150, 256)
    assert np.array_equal(vectors, np.asarray([fake_embedding(t) for t in texts], np.float32))


async def test_the_model_and_api_key_are_sent(
    embedder: OpenAIEmbedder, embeddings_app: Any
) -> None:
    await embedder.embed(["hello"])

    (request,) = embeddings_app.state.requests
    assert request["authorization"] == "Bearer sk-embed"
    assert request["model"] == "fake-embed"


async def test_no_authorization_header_without_a_key(
    embeddings_server: LiveServer, embeddings_app: Any, http: httpx.AsyncClient
) -> None:
    embedder = OpenAIEmbedder(http, embeddings_server.url + "/v1", "fake-embed")

    await embedder.embed(["hello"])

    assert embeddings_app.state.requests[0]["authorization"] is None


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_rate_limits_and_server_errors_are_retried(
    embedder: OpenAIEmbedder, embeddings_app: Any, status: int
) -> None:
    embeddings_app.state.failures = [status, status]

    vectors = await embedder.embed(["refund policy"])

    assert len(embeddings_app.state.requests) == 3
    assert np.array_equal(vectors[0], np.asarray(fake_embedding("refund policy"), np.float32))


async def test_retry_after_replaces_the_backoff(
    embeddings_server: LiveServer, embeddings_app: Any, http: httpx.AsyncClient
) -> None:
    embedder = OpenAIEmbedder(http, embeddings_server.url + "/v1", "m", backoff_seconds=60.0)
    embeddings_app.state.failures = [429]  # with "retry-after: 0"

    await asyncio.wait_for(embedder.embed(["refund policy"]), timeout=10)

    assert len(embeddings_app.state.requests) == 2


async def test_giving_up_after_the_last_attempt_says_what_was_answered(
    embedder: OpenAIEmbedder, embeddings_app: Any
) -> None:
    embeddings_app.state.failures = [429, 429, 429]

    with pytest.raises(EmbeddingError, match=r"failed 3 times.*HTTP 429.*fake failure 429"):
        await embedder.embed(["refund policy"])
    assert len(embeddings_app.state.requests) == 3


async def test_a_refusal_is_not_retried(embedder: OpenAIEmbedder, embeddings_app: Any) -> None:
    embeddings_app.state.failures = [400]

    with pytest.raises(EmbeddingError, match=r"refused to embed: HTTP 400"):
        await embedder.embed(["refund policy"])
    assert len(embeddings_app.state.requests) == 1


async def test_an_unreachable_server_is_retried_then_reported(http: httpx.AsyncClient) -> None:
    embedder = OpenAIEmbedder(http, "http://127.0.0.1:9/v1", "m", backoff_seconds=0.0)

    with pytest.raises(EmbeddingError, match=r"failed 3 times.*ConnectError"):
        await embedder.embed(["refund policy"])


async def test_a_response_with_missing_vectors_is_an_error(
    embedder: OpenAIEmbedder, embeddings_app: Any
) -> None:
    embeddings_app.state.short = True

    with pytest.raises(EmbeddingError, match=r"for 2 inputs"):
        await embedder.embed(["one", "two"])


async def test_base64_vectors_are_decoded(http: httpx.AsyncClient) -> None:
    vector = np.asarray([0.5, -1.0, 2.0], dtype="<f4")

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [
            {"index": 0, "embedding": base64.b64encode(vector.tobytes()).decode()}]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        vectors = await OpenAIEmbedder(client, "http://embed/v1", "m").embed(["x"])

    assert np.array_equal(vectors[0], vector)


async def test_nothing_to_embed_sends_nothing(
    embedder: OpenAIEmbedder, embeddings_app: Any
) -> None:
    assert len(await embedder.embed([])) == 0
    assert embeddings_app.state.requests == []


def test_embedder_from_settings(http: httpx.AsyncClient) -> None:
    assert embedder_from(None, "key", "model", http) is None
    assert embedder_from("", None, "model", http) is None
    with pytest.raises(ValueError, match="model"):
        embedder_from("http://embed/v1", None, None, http)
    embedder = embedder_from("http://embed/v1/", "key", "model", http)
    assert isinstance(embedder, OpenAIEmbedder)
    assert embedder.url == "http://embed/v1/embeddings"
    assert embedder.headers == {"Authorization": "Bearer key"}
