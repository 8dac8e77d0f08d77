"""Fixtures shared by the suite: a fresh database per test (SQLite file or PostgreSQL schema),
the app in-process, and the app served over a real loopback socket for the official SDK."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from assistants_server.app import create_app
from assistants_server.config import Settings
from assistants_server.db.migrate import run_blocking, upgrade_to_head
from assistants_server.sandbox import quota

POSTGRES_URL = os.environ.get(
    "ASSISTANTS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
# CI sets this so that a missing PostgreSQL fails the run instead of skipping its tests.
REQUIRE_SERVICES = os.environ.get("ASSISTANTS_TEST_REQUIRE_SERVICES") == "1"
BETA = {"OpenAI-Beta": "assistants=v2"}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject.toml): at least four workers, one per CPU beyond that. Most tests
    wait on sockets, servers and subprocesses rather than compute: on two cores, four workers
    ran the suite in 4 minutes where two took 6."""
    return max(4, os.cpu_count() or 1)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


async def create_database_if_missing(url: str) -> bool:
    """Create the database `url` names, connecting to the server's `postgres` database, when
    it does not exist (a fresh server has only `postgres`); True when it was created. Safe
    when several test processes race to create it."""
    import asyncpg

    target = make_url(url)
    dsn = target.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        if await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1",
                                     target.database):
            return False
        name = str(target.database).replace('"', '""')
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await connection.close()


@functools.cache
def _postgres_problem() -> str | None:
    """Why tests cannot use PostgreSQL here, or None: it answers, and the database of
    POSTGRES_URL exists (created when missing)."""
    url = make_url(POSTGRES_URL)
    host, port = url.host or "127.0.0.1", url.port or 5432
    if not _reachable(host, port):
        return f"PostgreSQL is not answering on {host}:{port}"
    try:
        run_blocking(create_database_if_missing(POSTGRES_URL))
    except Exception as exc:  # e.g. a role without CREATEDB
        return (f"the database {url.database!r} does not exist on {host}:{port} and could not "
                f"be created ({exc}); create it, or set ASSISTANTS_TEST_POSTGRES_URL")
    return None


# --- a fresh, migrated database per test, migrated only once per session ------------------
#
# Running the Alembic migrations for every test cost a large share of the suite's time, so
# each session (each xdist worker) migrates once per kind, on first use, and every test gets
# its own copy of the result: a copy of a migrated SQLite file, or a PostgreSQL schema made
# from a pg_dump of a migrated one (35 ms, where migrating took 170 ms and even
# `CREATE DATABASE ... TEMPLATE` 150 ms). Tests that exercise migrations run Alembic on their
# copy for real.


@functools.cache
def _sqlite_template() -> Path:
    """A SQLite database file migrated to head."""
    directory = Path(tempfile.mkdtemp(prefix="assistants-template-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    template = Settings(data_dir=directory)
    upgrade_to_head(template)
    path = Path(str(make_url(template.resolved_database_url).database))
    # The migration closed every connection, so SQLite folded its WAL into the file: the
    # file alone is the whole database, and a copy of it is a consistent one.
    assert not path.with_name(path.name + "-wal").exists(), "the template's WAL was not merged"
    return path


# Stands for the schema's name in _postgres_template(): a name nothing else contains.
TEMPLATE_SCHEMA = "t_template_" + uuid.uuid4().hex


@functools.cache
def _postgres_template() -> str | None:
    """SQL that makes a schema as migrated to head (its tables, sequences, indexes and rows,
    alembic_version's), naming it TEMPLATE_SCHEMA; None without a pg_dump that can dump this
    server, and then each test migrates its own schema as before."""
    scratch = Path(tempfile.mkdtemp(prefix="assistants-template-"))  # a data_dir, unused
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    upgrade_to_head(Settings(data_dir=scratch, database_url=POSTGRES_URL,
                             database_schema=TEMPLATE_SCHEMA))
    try:
        dump = subprocess.run(
            ["pg_dump", "--dbname", _dsn(), "--schema", TEMPLATE_SCHEMA, "--inserts",
             "--no-owner", "--no-privileges"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        run_blocking(_drop_schema(TEMPLATE_SCHEMA))
    # Lines starting with a backslash (\restrict) are psql's commands, not SQL.
    return "\n".join(line for line in dump.splitlines() if not line.startswith("\\"))


def _dsn() -> str:
    return POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")


async def _execute(sql: str) -> None:
    """Run SQL, one statement or several (then in one transaction), on POSTGRES_URL."""
    import asyncpg

    connection = await asyncpg.connect(_dsn())
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _drop_schema(schema: str) -> None:
    await _execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def make_settings(kind: str, tmp_path: Path, **overrides: Any) -> Iterator[Settings]:
    """Settings on a database of `kind` that no other test shares, migrated to head."""
    if kind == "sqlite":
        settings = Settings(data_dir=tmp_path, **overrides)
        database = make_url(settings.resolved_database_url).database
        target = Path(database) if database and database != ":memory:" else None
        if settings.is_sqlite and target is not None and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_sqlite_template(), target)
        else:  # somewhere a copy cannot go (an in-memory or existing database): migrate it
            upgrade_to_head(settings)
        yield settings
        return
    if (problem := _postgres_problem()) is not None:
        if REQUIRE_SERVICES:
            pytest.fail(problem)
        pytest.skip(problem)
    schema = "t_" + uuid.uuid4().hex[:16]
    settings = Settings(
        data_dir=tmp_path, database_url=POSTGRES_URL, database_schema=schema,
        database_pool_size=2, **overrides,
    )
    template = _postgres_template()
    if template is None:
        upgrade_to_head(settings)
    else:
        run_blocking(_execute(template.replace(TEMPLATE_SCHEMA, schema)))
    try:
        yield settings
    finally:
        run_blocking(_drop_schema(schema))


@pytest.fixture(scope="session", autouse=True)
def _no_sandbox_mount_outlives_the_tests(tmp_path_factory: pytest.TempPathFactory
                                         ) -> Iterator[None]:
    """Servers the tests kill outright leave their sessions' /mnt/data mounts (root only) in
    this machine's mount table, as a crashed server would until the next one starts there."""
    yield
    quota.unmount_under(tmp_path_factory.getbasetemp())


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> str:
    """The database kind a test runs on; every test using `settings` runs on both."""
    return str(request.param)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to configure the server (e.g. models, api_keys)."""
    return {}


@pytest.fixture
def settings(
    database: str, tmp_path: Path, settings_overrides: dict[str, Any]
) -> Iterator[Settings]:
    yield from make_settings(database, tmp_path, **settings_overrides)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process, with the headers the SDK always sends."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers={**BETA}
    ) as http:
        yield http


@asynccontextmanager
async def running(settings: Settings, headers: dict[str, str],
                  base_url: str = "http://testserver") -> AsyncIterator[httpx.AsyncClient]:
    """Another server on `settings` (its own app, caches and workers), started, and an
    in-process client of it sending `headers`."""
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base_url, headers=headers) as http:
        yield http


class LiveServer:
    """A uvicorn server on a loopback port, in a background thread."""

    def __init__(self, app: FastAPI) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the test server failed to start")
            threading.Event().wait(0.01)
        return self

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings)) as server:
        yield server


@pytest.fixture
def sdk(live_server: LiveServer) -> Any:
    """The official openai client, pointed at the live server, retries off."""
    import openai

    return openai.OpenAI(base_url=live_server.url + "/v1", api_key="sk-test", max_retries=0)


@pytest.fixture
def alpha() -> Iterator[LiveServer]:
    """A fake model backend serving `llama3.1:8b` (one of two, for routing and fallbacks)."""
    from tests.fake_backend import create_fake_backend

    with LiveServer(create_fake_backend(["llama3.1:8b"])) as server:
        yield server


@pytest.fixture
def beta() -> Iterator[LiveServer]:
    """A second fake model backend, serving `qwen2.5:72b`."""
    from tests.fake_backend import create_fake_backend

    with LiveServer(create_fake_backend(["qwen2.5:72b"])) as server:
        yield server
