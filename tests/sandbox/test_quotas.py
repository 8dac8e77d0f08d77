"""What one session may take from the machine besides a cell's CPU and memory: the bytes its
/mnt/data holds (a mount of that size as root, measured after each execution otherwise), and no
CPU at all between executions, whatever threads a cell left running."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from assistants_server.sandbox import Limits, LocalSandbox, SandboxError, quota
from assistants_server.sandbox.directories import process_directory

from .test_lifecycle import HAS_SYSTEM_PYTHON, SYSTEM_PYTHON, process_tree

MiB = 1 << 20
AS_ROOT = os.geteuid() == 0
# As root the session drops to a uid of its own, so its Python must be readable by others.
UNISOLATED_PYTHON = SYSTEM_PYTHON if AS_ROOT and HAS_SYSTEM_PYTHON else sys.executable


@pytest.fixture
async def small_disk(tmp_path: Path) -> AsyncIterator[LocalSandbox]:
    box = LocalSandbox(tmp_path / "sandboxes", Limits(wall_seconds=20, disk_bytes=8 * MiB))
    yield box
    await box.aclose()


def _mounts() -> str:
    return Path("/proc/self/mountinfo").read_text()


async def test_a_cell_cannot_write_past_the_session_quota(small_disk: LocalSandbox) -> None:
    result = await small_disk.execute("thread_a", "open('a.bin', 'wb').write(b'x' * (4 << 20))")
    assert result.error is None and result.files == ["a.bin"]
    result = await small_disk.execute("thread_a", "open('b.bin', 'wb').write(b'x' * (6 << 20))")
    assert result.error is not None
    assert "No space left on device" in result.error or "went over its quota" in result.error
    directory = small_disk._sessions["thread_a"].directory
    assert await asyncio.to_thread(quota.usage, directory) <= 8 * MiB
    assert (directory / "a.bin").stat().st_size == 4 * MiB  # what fitted is kept
    if AS_ROOT:
        assert str(directory) in _mounts()
        await small_disk.close("thread_a")
        assert str(directory) not in _mounts() and not directory.exists()


async def test_a_file_that_does_not_fit_is_not_put(small_disk: LocalSandbox) -> None:
    await small_disk.put_file("thread_a", "first.csv", b"x" * (5 * MiB))
    with pytest.raises(SandboxError, match=r"second.csv \(5 MiB\) does not fit in /mnt/data"):
        await small_disk.put_file("thread_a", "second.csv", b"x" * (5 * MiB))
    result = await small_disk.execute("thread_a", "import os; sorted(os.listdir('.'))")
    assert "first.csv" in result.logs and "second.csv" not in result.logs


async def test_without_a_mount_what_an_execution_wrote_past_the_quota_is_removed(
        tmp_path: Path) -> None:
    box = LocalSandbox(tmp_path / "sandboxes", Limits(wall_seconds=20, disk_bytes=8 * MiB),
                       python=UNISOLATED_PYTHON, isolation="none")
    try:
        kept = await box.execute("thread_a", "open('keep.bin', 'wb').write(b'k' * (2 << 20))")
        assert kept.error is None
        result = await box.execute(
            "thread_a", "open('big.bin', 'wb').write(b'x' * (10 << 20))\nprint('written')")
        assert result.logs.strip() == "written" and result.files == []
        assert result.error is not None
        assert "went over its quota of 8 MiB" in result.error and "big.bin" in result.error
        listing = await box.execute("thread_a", "import os; sorted(os.listdir('.'))")
        assert "keep.bin" in listing.logs and "big.bin" not in listing.logs
    finally:
        await box.aclose()


@pytest.mark.skipif(not AS_ROOT, reason="only root mounts the quota; unprivileged, none is left")
def test_mounts_left_by_a_killed_server_are_removed_at_start(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = tmp_path / f"{socket.gethostname()}-{child.pid}"
    session = dead / "thread_x"
    session.mkdir(parents=True)
    quota.mount(session, 4 * MiB, None)
    (session / "left.bin").write_bytes(b"x" * 1000)
    assert str(session) in _mounts()
    process_directory(tmp_path)
    assert str(session) not in _mounts() and not dead.exists()


SPIN = """
import threading, time
count = [0]
def spin():
    while True:
        count[0] += 1
threading.Thread(target=spin, daemon=True).start()
time.sleep(0.5)
at_end = count[0]
at_end
"""


def _stopped(pids: set[int]) -> bool:
    states = []
    for pid in pids:
        try:
            states.append(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0])
        except OSError:
            continue
    return "T" in states


@pytest.mark.parametrize("isolation", ["namespaces", "none"])
async def test_threads_a_cell_leaves_running_use_no_cpu_between_cells(
        tmp_path: Path, isolation: str) -> None:
    python = UNISOLATED_PYTHON if isolation == "none" else sys.executable
    box = LocalSandbox(tmp_path / "sandboxes", Limits(wall_seconds=20), python=python,
                       isolation=isolation)  # type: ignore[arg-type]
    try:
        first = await box.execute("thread_a", SPIN)
        assert first.error is None
        counted_in_half_a_second = int(first.logs)
        worker = box._sessions["thread_a"].worker
        assert worker is not None
        for _ in range(100):  # the worker stops itself just after answering
            if _stopped(process_tree(worker.proc.pid)):
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the session's worker was not stopped between executions")
        await asyncio.sleep(1.5)  # three times as long as the spinning thread had in its cell
        gained = int((await box.execute("thread_a", "count[0] - at_end")).logs)
        assert gained < counted_in_half_a_second / 4
        # Stopped, not killed: the thread goes on while a cell runs.
        resumed = "import time\nbefore = count[0]\ntime.sleep(0.2)\ncount[0] > before"
        assert (await box.execute("thread_a", resumed)).logs == "True"
    finally:
        await box.aclose()


@pytest.mark.skipif(not AS_ROOT, reason="only root mounts the quota; unprivileged, none is left")
async def test_a_put_that_fills_the_mount_leaves_no_partial_file(
        small_disk: LocalSandbox) -> None:
    from assistants_server.sandbox import workdir

    await small_disk.put_file("thread_a", "first.csv", b"x")
    directory = small_disk._sessions["thread_a"].directory
    with pytest.raises(OSError, match="No space left"):  # past the check, as in a race
        await asyncio.to_thread(workdir.put, directory, "big.bin", b"x" * (9 * MiB), None)
    assert sorted(os.listdir(directory)) == ["first.csv"]
