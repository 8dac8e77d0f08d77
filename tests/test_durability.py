"""Durability, stated and chosen: private files and directories, synced blobs, SQLite's
synchronous mode as a setting, crashed uploads swept, and a full disk answered 507."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any, BinaryIO

import httpx
from sqlalchemy import text

from assistants_server.app import create_app
from assistants_server.files.blobs import LocalBlobStore
from tests.conftest import BETA, make_settings
from tests.test_cli import EXE


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_data_directory_and_database_are_private(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
    data = tmp_path / "data"
    subprocess.run([EXE, "migrate"], env={**env, "ASSISTANTS_DATA_DIR": str(data)},
                   check=True, capture_output=True)
    assert _mode(data) == 0o700
    assert _mode(data / "assistants.db") == 0o600


async def test_uploaded_bytes_are_private_and_crashed_uploads_are_swept(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "files")
    with (tmp_path / "upload").open("wb+") as source:
        source.write(b"secret")
        source.seek(0)
        assert await blobs.put("file-abc", source) == 6
    assert _mode(tmp_path / "files") == 0o700 and _mode(tmp_path / "files" / "file-abc") == 0o600
    stale, fresh = tmp_path / "files" / ".upload-crashed", tmp_path / "files" / ".upload-live"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    hours_ago = time.time() - 7200
    os.utime(stale, (hours_ago, hours_ago))
    assert await blobs.sweep_temporary() == 1
    assert not stale.exists() and fresh.exists() and (tmp_path / "files" / "file-abc").exists()


class _FullDisk(LocalBlobStore):
    async def put(self, key: str, source: BinaryIO) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


async def test_a_full_disk_is_a_507_that_saves_nothing(tmp_path: Path) -> None:
    [settings] = make_settings("sqlite", tmp_path)
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver",
            headers=BETA) as client:
        app.state.blobs = _FullDisk(tmp_path / "files")
        response = await client.post("/v1/files", data={"purpose": "assistants"},
                                     files={"file": ("a.txt", b"hello")})
        listed = (await client.get("/v1/files")).json()["data"]
    assert response.status_code == 507
    assert response.json()["error"]["code"] == "insufficient_storage"
    assert response.headers["x-should-retry"] == "false"
    assert listed == []


async def test_sqlite_synchronous_is_a_setting(tmp_path: Path) -> None:
    modes: dict[str, Any] = {}
    for mode in ("normal", "full"):
        [settings] = make_settings("sqlite", tmp_path / mode, sqlite_synchronous=mode)
        app = create_app(settings)
        async with app.router.lifespan_context(app), app.state.engine.connect() as connection:
            modes[mode] = await connection.scalar(text("PRAGMA synchronous"))
    assert modes == {"normal": 1, "full": 2}
