"""ASSISTANTS_GC_YOUNG_THRESHOLD: collections tuned while serving, Python's defaults back at
shutdown, and untouched unless asked for."""

from __future__ import annotations

import gc
from pathlib import Path

from assistants_server.app import create_app
from assistants_server.config import Settings
from tests.conftest import make_settings


async def _threshold_while_serving(settings: Settings) -> int:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        return gc.get_threshold()[0]


async def test_the_threshold_applies_while_serving_and_is_undone(tmp_path: Path) -> None:
    before = gc.get_threshold()
    settings = next(make_settings("sqlite", tmp_path, gc_young_threshold=50_000))
    assert await _threshold_while_serving(settings) == 50_000
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


async def test_python_defaults_are_kept_unless_asked(tmp_path: Path) -> None:
    before = gc.get_threshold()
    settings = next(make_settings("sqlite", tmp_path))
    assert await _threshold_while_serving(settings) == before[0]
