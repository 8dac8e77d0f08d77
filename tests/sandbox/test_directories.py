"""A starting server removes the sandbox directories its host's dead processes left (a
killed session's files would stay on disk forever), and no other's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from assistants_server.sandbox.directories import process_directory


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_directories_of_dead_processes_of_this_host_are_removed(tmp_path: Path) -> None:
    host = socket.gethostname()
    dead, old_layout = tmp_path / f"{host}-{_dead_pid()}", tmp_path / str(_dead_pid())
    alive = tmp_path / f"{host}-{os.getppid()}"  # the test runner's parent: running
    elsewhere = tmp_path / "another-host-1"  # on a shared volume: not ours to judge
    for directory in (dead, old_layout, alive, elsewhere):
        (directory / "thread_x").mkdir(parents=True)
        (directory / "thread_x" / "big.bin").write_bytes(b"x" * 1000)
    mine = process_directory(tmp_path)
    assert mine == tmp_path / f"{host}-{os.getpid()}"
    assert not dead.exists() and not old_layout.exists()
    assert alive.exists() and elsewhere.exists()
