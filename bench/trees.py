"""What the before/after benchmarks (mixed_load.py, thread_length.py) share: source trees, each
served by its own virtualenv's `assistants-server serve`; a fresh database per server run
(SQLite in a temp dir, or a PostgreSQL database created and dropped around the run); and the
paced fake model (paced_backend.py) in its own process."""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from harness import BenchError, free_port, stop

BENCH = Path(__file__).resolve().parent
DEFAULT_TREES = {"baseline": Path("/work/base"), "candidate": BENCH.parent}
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Tree:
    name: str
    root: Path
    venv: Path

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "assistants-server"

    def describe(self) -> dict[str, Any]:
        """Its path, venv, commit and whether `src/` differs from that commit."""
        git = ["git", "-C", str(self.root)]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True,
                               text=True).stdout.strip()
        return {"name": self.name, "root": str(self.root), "venv": str(self.venv),
                "commit": commit + ("-dirty" if dirty else "") if commit else "unknown"}


def add_tree_arguments(p: argparse.ArgumentParser, default_trees: str) -> None:
    for name, root in DEFAULT_TREES.items():
        p.add_argument(f"--{name}", type=Path, default=root, metavar="DIR",
                       help=f"the {name} source tree (default {root})")
        p.add_argument(f"--{name}-venv", type=Path, metavar="DIR",
                       help=f"its virtualenv (default <{name}>/.venv)")
    p.add_argument("--trees", default=default_trees,
                   help=f"which trees to measure, in order (default {default_trees})")
    p.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--pg-admin-url", default=PG_ADMIN,
                   help="where to create and drop each run's database (default %(default)s)")


def trees_from(args: argparse.Namespace) -> list[Tree]:
    trees = []
    for name in args.trees.split(","):
        if name not in DEFAULT_TREES:
            raise SystemExit(f"--trees: unknown tree {name!r} (baseline, candidate)")
        root = getattr(args, name).resolve()
        venv = getattr(args, f"{name}_venv") or root / ".venv"
        tree = Tree(name, root, venv)
        if not tree.command.exists():
            raise SystemExit(f"{tree.command} does not exist")
        trees.append(tree)
    return trees


class Database:
    """A fresh database for one server run: SQLite in the data dir, or a PostgreSQL database
    created on enter and dropped (WITH FORCE) on exit."""

    def __init__(self, kind: str, admin_url: str, data_dir: Path, label: str) -> None:
        self.kind, self.admin_url, self.data_dir = kind, admin_url, data_dir
        self.name = f"bench_{label}_{os.getpid()}_{int(time.time() * 1000) % 10**7}"

    @property
    def env(self) -> dict[str, str]:
        if self.kind == "sqlite":
            return {}
        base = self.admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        return {"ASSISTANTS_DATABASE_URL": f"{base}/{self.name}"}

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def __enter__(self) -> Database:
        if self.kind == "postgres":
            asyncio.run(self._admin(f'CREATE DATABASE "{self.name}"'))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.kind == "postgres":
            asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    def scalar(self, sql: str, *params: Any) -> Any:
        """One value read straight from the database (PostgreSQL placeholders: $1...)."""
        if self.kind == "sqlite":
            path = self.data_dir / "assistants.db"
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
                return conn.execute(sql.replace("$1", "?"), params).fetchone()[0]
        return asyncio.run(self._postgres("fetchval", sql, *params))

    def execute(self, sql: str) -> None:
        """A statement run on this PostgreSQL database (e.g. ANALYZE)."""
        asyncio.run(self._postgres("execute", sql))

    async def _postgres(self, method: str, sql: str, *params: Any) -> Any:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url.rsplit("/", 1)[0] + "/" + self.name)
        try:
            return await getattr(conn, method)(sql, *params)
        finally:
            await conn.close()


def clean_environment() -> dict[str, str]:
    """This process's environment without anything that would steer the server under test
    (ASSISTANTS_*, another virtualenv, PYTHONPATH)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("ASSISTANTS_") and k not in ("VIRTUAL_ENV", "PYTHONPATH",
                                                             "PYTHONHOME")}


def _wait(proc: subprocess.Popen[bytes], url: str, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{proc.args!r} exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop(proc)
    raise BenchError(f"{proc.args!r} did not answer {url} in {seconds:g} s:\n"
                     f"{log.read_text()[-3000:]}")


def start_backend(log: Path, *options: str) -> tuple[subprocess.Popen[bytes], str]:
    """paced_backend.py on a free port, in its own process; (process, its /v1 URL)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(BENCH / "paced_backend.py"), str(port),
                             *options], stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env=clean_environment())
    url = f"http://127.0.0.1:{port}/v1"
    _wait(proc, url + "/models", log, 30)
    return proc, url


def start_server(tree: Tree, data_dir: Path, env: dict[str, str], log: Path,
                 attempts: int = 1, retry_seconds: float = 60.0,
                 ) -> tuple[subprocess.Popen[bytes], str]:
    """`<venv>/bin/assistants-server serve` on a free port with ASSISTANTS_DATA_DIR=data_dir
    and `env`; (process, its URL). A tree being edited may not start: it is tried `attempts`
    times, `retry_seconds` apart."""
    for attempt in range(1, attempts + 1):
        port = free_port()
        proc = subprocess.Popen(
            [str(tree.command), "serve", "--port", str(port)], cwd=data_dir,
            stdout=log.open("ab"), stderr=subprocess.STDOUT,
            env={**clean_environment(), "ASSISTANTS_DATA_DIR": str(data_dir),
                 "ASSISTANTS_LOG_LEVEL": "warning", **env})
        url = f"http://127.0.0.1:{port}"
        try:
            _wait(proc, url + "/health", log, 90)
            return proc, url
        except BenchError as exc:
            stop(proc)
            if attempt == attempts:
                raise
            print(f"  {tree.name}: the server did not start (attempt {attempt}/{attempts}); "
                  f"retrying in {retry_seconds:g} s: {str(exc).splitlines()[-1][:200]}",
                  flush=True)
            time.sleep(retry_seconds)
    raise AssertionError("unreachable")
