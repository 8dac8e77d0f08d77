"""A source server on SQLite with data to move, and targets on each database; runs need the
fake backend of the runs' tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistants_server.config import Settings
from tests.conftest import BETA, LiveServer, make_settings, running
from tests.runs.conftest import backend, script, sent

__all__ = ["backend", "script", "sent"]

ADMIN = "sk-admin-transfer-tests"
DEFAULT_KEY = "sk-default-transfer-tests"
AUTH = {"Authorization": f"Bearer {DEFAULT_KEY}", **BETA}


def server_settings(kind: str, directory: Path, backend: LiveServer) -> Iterator[Settings]:
    """A server of its own on a `kind` database, with a data directory (its files) of its own."""
    directory.mkdir()
    yield from make_settings(kind, directory, backend_base_url=backend.url + "/v1",
                             api_keys=[DEFAULT_KEY], admin_keys=[ADMIN], key_cache_seconds=0,
                             file_search_wait_seconds=0)


def quiet(total: int) -> Any:
    """No progress to show."""
    return lambda records, size: None


def served(settings: Settings) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """The server on `settings`, running, and a client of it with the default project's key."""
    return running(settings, AUTH, "http://server")


@pytest.fixture
def source(tmp_path: Path, backend: LiveServer) -> Iterator[Settings]:
    yield from server_settings("sqlite", tmp_path / "source", backend)


@pytest.fixture
def target(tmp_path: Path, backend: LiveServer, database: str) -> Iterator[Settings]:
    yield from server_settings(database, tmp_path / "target", backend)


@pytest.fixture
def second(tmp_path: Path, backend: LiveServer, database: str) -> Iterator[Settings]:
    yield from server_settings(database, tmp_path / "second", backend)
