"""Bring a database to the newest schema with Alembic, from code (the CLI and tests call this).

The scripts live in the repository's top-level `migrations/`, which the package links as
`assistants_server/migrations`, so an installed wheel migrates without alembic.ini.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from assistants_server.config import Settings

SCRIPTS = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["settings"] = settings
    return config


def upgrade_to_head(settings: Settings) -> None:
    command.upgrade(alembic_config(settings), "head")
