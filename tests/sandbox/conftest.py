"""The sandbox most tests use: sessions under a data directory of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from assistants_server.sandbox import Limits, LocalSandbox


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[LocalSandbox]:
    # Namespace isolation is required here: where it is unavailable, execute() raises
    # IsolationUnavailable and these tests fail, saying why.
    box = LocalSandbox(tmp_path / "data" / "sandboxes", Limits(wall_seconds=20))
    yield box
    await box.aclose()
