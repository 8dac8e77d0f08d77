"""Several processes migrating one fresh database at once (a deploy starting every process
together) run the migrations once, and none crashes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from assistants_server.db.migrate import SCRIPTS, run_blocking
from tests.conftest import POSTGRES_URL, _execute, _postgres_problem
from tests.test_cli import EXE

HEAD = ScriptDirectory(str(SCRIPTS)).get_current_head()


def _migrate_together(tmp_path: Path, **settings: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
    env.update(ASSISTANTS_DATA_DIR=str(tmp_path / "data"),
               **{f"ASSISTANTS_{k.upper()}": v for k, v in settings.items()})
    processes = [subprocess.Popen([EXE, "migrate"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [(p.wait(timeout=120), p.communicate()[0]) for p in processes]
    assert [code for code, _ in outputs] == [0] * 4, "\n".join(out for _, out in outputs)


def test_four_processes_migrate_one_fresh_sqlite_file(tmp_path: Path) -> None:
    _migrate_together(tmp_path)
    with sqlite3.connect(tmp_path / "data" / "assistants.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]


def test_four_processes_migrate_one_fresh_postgresql_schema(tmp_path: Path) -> None:
    if (problem := _postgres_problem()) is not None:
        pytest.skip(problem)
    schema = "t_migrate_" + uuid.uuid4().hex[:12]
    try:
        _migrate_together(tmp_path, database_url=POSTGRES_URL, database_schema=schema)
        import asyncpg

        async def versions() -> list[str]:
            connection = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
            try:
                rows = await connection.fetch(f'SELECT version_num FROM "{schema}".alembic_version')
            finally:
                await connection.close()
            return [row[0] for row in rows]

        assert run_blocking(versions()) == [HEAD]
    finally:
        run_blocking(_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
