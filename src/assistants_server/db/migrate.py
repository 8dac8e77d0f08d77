"""Bring a database to the newest schema with Alembic, from code (the CLI and tests call this).

The scripts live in the repository's top-level `migrations/`, which the package links as
`assistants_server/migrations`, so an installed wheel migrates without alembic.ini.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config

from assistants_server.config import Settings

T = TypeVar("T")

SCRIPTS = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["settings"] = settings
    return config


def upgrade_to_head(settings: Settings) -> None:
    command.upgrade(alembic_config(settings), "head")


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, in its own event loop and thread, so it
    works even when the caller is inside a running loop (Alembic's env.py, tests)."""
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]
