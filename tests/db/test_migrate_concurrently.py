"""Several processes migrating one fresh database at once (a deploy starting every process
together) run the migrations once, and none crashes: the others wait for the first, then find
the database at the newest revision."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from assistants_server.db.migrate import SCRIPTS, run_blocking
from tests.conftest import POSTGRES_URL, _postgres_problem, create_database_if_missing

HEAD = ScriptDirectory(str(SCRIPTS)).get_current_head()
PROCESSES = 4

# Each process imports everything first, says it is ready, then waits for the barrier file:
# released together, they all reach the empty database within a millisecond or so.
PROCESS = """
import sys, time
from pathlib import Path
import assistants_server.db.models, alembic.command
from assistants_server.cli import main
Path(sys.argv[1] + ".ready-" + sys.argv[2]).touch()
while not Path(sys.argv[1]).exists():
    time.sleep(0.0005)
sys.exit(main(["migrate"]))
"""


def _migrate_together(tmp_path: Path, **settings: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
    env.update(ASSISTANTS_DATA_DIR=str(tmp_path / "data"),
               **{f"ASSISTANTS_{k.upper()}": v for k, v in settings.items()})
    barrier = tmp_path / "go"
    processes = [subprocess.Popen([sys.executable, "-c", PROCESS, str(barrier), str(n)],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) for n in range(PROCESSES)]
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("go.ready-*"))) < PROCESSES:
            assert time.monotonic() < deadline, "the processes did not start"
            assert all(p.poll() is None for p in processes), processes[0].communicate()[0]
            time.sleep(0.01)
        barrier.touch()
        outputs = [(p.wait(timeout=60), p.communicate()[0]) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    assert [code for code, _ in outputs] == [0] * PROCESSES, "\n".join(o for _, o in outputs)


def test_four_processes_migrate_one_fresh_sqlite_file(tmp_path: Path) -> None:
    _migrate_together(tmp_path)
    with sqlite3.connect(tmp_path / "data" / "assistants.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]


def test_four_processes_migrate_one_fresh_postgresql_database(tmp_path: Path) -> None:
    if (problem := _postgres_problem()) is not None:
        pytest.skip(problem)
    url = make_url(POSTGRES_URL).set(database="t_migrate_" + uuid.uuid4().hex[:12])
    url_text = url.render_as_string(hide_password=False)
    assert run_blocking(create_database_if_missing(url_text))
    try:
        _migrate_together(tmp_path, database_url=url_text)
        assert run_blocking(_fetch(url_text, "SELECT version_num FROM alembic_version")) == [HEAD]
    finally:
        run_blocking(_fetch(POSTGRES_URL, f'DROP DATABASE "{url.database}" WITH (FORCE)'))


async def _fetch(url: str, sql: str) -> list[object]:
    """The first column of what `sql` returns, on the database `url` names."""
    import asyncpg

    connection = await asyncpg.connect(make_url(url).set(drivername="postgresql")
                                       .render_as_string(hide_password=False))
    try:
        return [row[0] for row in await connection.fetch(sql)]
    finally:
        await connection.close()
