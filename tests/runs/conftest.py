"""Runs need a model: every test here gets a fake Chat Completions backend on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LiveServer
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
