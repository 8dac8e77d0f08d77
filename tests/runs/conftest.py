"""Runs need a model: every test here gets a fake Chat Completions backend on loopback; tests
of several processes get a Redis key prefix of their own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES, LiveServer, _reachable
from tests.fake_backend import create_fake_backend


@pytest.fixture
def backend() -> Iterator[LiveServer]:
    with LiveServer(create_fake_backend(["fake-model"])) as server:
        yield server


@pytest.fixture
def settings_overrides(backend: LiveServer) -> dict[str, Any]:
    return {"backend_base_url": backend.url + "/v1", "lease_seconds": 3.0}


@pytest.fixture
def script(backend: LiveServer) -> list[Any]:
    """Replies the fake backend plays, in order; append `Reply(...)` objects."""
    replies: list[Any] = backend.server.config.app.state.script
    return replies


@pytest.fixture
def sent(backend: LiveServer) -> list[dict[str, Any]]:
    """The chat request bodies the server sent to the backend."""
    bodies: list[dict[str, Any]] = backend.server.config.app.state.bodies
    return bodies


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def prefix() -> Iterator[str]:
    """Keys no other test shares, deleted afterwards."""
    if not _reachable("127.0.0.1", 6379):
        if REQUIRE_SERVICES:
            pytest.fail("Redis is not answering on 127.0.0.1:6379")
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    name = "t_" + uuid.uuid4().hex[:12]
    yield name
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()
