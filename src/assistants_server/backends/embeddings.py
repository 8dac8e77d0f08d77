"""Embeddings: the `Embedder` seam, and a client for any OpenAI-compatible `/embeddings` API.

The search index embeds chunks when a file is indexed and questions when it is searched, always
outside a database transaction. Inputs go out in batches; 429s, 5xxs and transport errors are
retried with backoff (honouring `Retry-After`); anything else is an `EmbeddingError` whose
message says what the endpoint answered.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from typing import Any, Protocol

import httpx
import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 30.0


class EmbeddingError(Exception):
    """The embeddings endpoint could not embed the inputs; the message says why."""


class Embedder(Protocol):
    async def embed(self, texts: Sequence[str]) -> Vectors:
        """One row per text, in order, all of one dimension (not necessarily unit length)."""
        ...


class OpenAIEmbedder:
    """`POST {base_url}/embeddings` with `model` and up to `batch_size` inputs per request."""

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, model: str, api_key: str | None = None,
        *, batch_size: int = 64, attempts: int = 3, backoff_seconds: float = 0.5,
    ) -> None:
        if batch_size < 1 or attempts < 1:
            raise ValueError("batch_size and attempts must be at least 1")
        self.client, self.url, self.model = client, base_url.rstrip("/") + "/embeddings", model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.batch_size, self.attempts, self.backoff_seconds = batch_size, attempts, backoff_seconds

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        batches = [await self._embed_batch(texts[start:start + self.batch_size])
                   for start in range(0, len(texts), self.batch_size)]
        if len({batch.shape[1] for batch in batches}) != 1:
            raise EmbeddingError(f"{self.url} answered vectors of different dimensions")
        return np.concatenate(batches)

    async def _embed_batch(self, batch: Sequence[str]) -> Vectors:
        # An empty string is refused by OpenAI's endpoint; a space embeds as "nothing".
        body = {"model": self.model, "input": [text or " " for text in batch]}
        failure, delay = "", 0.0
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(delay)
            delay = self.backoff_seconds * 2**attempt
            try:
                response = await self.client.post(self.url, json=body, headers=self.headers)
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in RETRYABLE:
                failure = _describe(response)
                hinted = _retry_after(response)
                delay = delay if hinted is None else min(hinted, MAX_RETRY_AFTER_SECONDS)
                continue
            if response.status_code != 200:
                raise EmbeddingError(f"{self.url} refused to embed: {_describe(response)}")
            return _vectors(response, len(batch), self.url)
        raise EmbeddingError(f"{self.url} failed {self.attempts} times; last answer: {failure}")


def _describe(response: httpx.Response) -> str:
    return f"HTTP {response.status_code} {response.text[:300]!r}"


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None  # absent, or an HTTP date: fall back to backoff


def _vectors(response: httpx.Response, count: int, url: str) -> Vectors:
    """The response's vectors in input order; float lists or base64 float32 alike."""
    try:
        items: list[dict[str, Any]] = sorted(response.json()["data"], key=lambda d: d["index"])
        rows = [np.frombuffer(base64.b64decode(e), dtype="<f4") if isinstance(e, str)
                else np.asarray(e, dtype=np.float32)
                for e in (item["embedding"] for item in items)]
        vectors = np.stack(rows).astype(np.float32, copy=False)
    except (ValueError, KeyError, TypeError) as exc:
        raise EmbeddingError(f"{url} answered an unreadable body: {exc!r}") from None
    if vectors.ndim != 2 or len(vectors) != count or vectors.shape[1] == 0:
        raise EmbeddingError(f"{url} answered {vectors.shape} vectors for {count} inputs")
    return vectors


def embedder_from(
    base_url: str | None, api_key: str | None, model: str | None, client: httpx.AsyncClient,
) -> Embedder | None:
    """The embedder the settings describe, or None (keyword search only) without a base URL."""
    if not base_url:
        return None
    if not model:
        raise ValueError("an embeddings base URL needs an embeddings model")
    return OpenAIEmbedder(client, base_url, model, api_key)
