"""Sessions over time: a timeout or crash restarts the session (variables lost, files kept), a
cancelled execution kills it, idle sessions are reaped, the oldest idle one makes room for a
new one, and aclose leaves no process behind. Also the other isolation modes: an
unprivileged server (user namespace) and the explicit opt-out (none)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from assistants_server.sandbox import Limits, LocalSandbox, quota

SRC = Path(__file__).resolve().parents[2] / "src"
SYSTEM_PYTHON = "/usr/bin/python3"
HAS_SYSTEM_PYTHON = Path(SYSTEM_PYTHON).exists()


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[LocalSandbox]:
    box = LocalSandbox(tmp_path / "sandboxes", Limits(wall_seconds=2))
    yield box
    await box.aclose()


def process_tree(root: int) -> set[int]:
    """`root` and its descendants, from /proc (namespaced processes included)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree = {root}
    while grown := {pid for pid, parent in parents.items() if parent in tree} - tree:
        tree |= grown
    return tree


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _wait_gone(pids: set[int]) -> bool:
    deadline = time.monotonic() + 5
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not any(running(pid) for pid in pids)


async def all_gone(pids: set[int]) -> bool:
    """Whether every process of `pids` ended (in at most 5 s)."""
    return await asyncio.to_thread(_wait_gone, pids)


def session_processes(box: LocalSandbox, key: str) -> set[int]:
    worker = box._sessions[key].worker
    assert worker is not None
    return process_tree(worker.proc.pid)


async def test_infinite_loop_times_out_and_the_session_restarts(sandbox: LocalSandbox) -> None:
    await sandbox.execute("thread_a", "x = 1\nopen('kept.txt', 'w').write('files survive')")
    before = session_processes(sandbox, "thread_a")
    started = time.monotonic()
    result = await sandbox.execute(
        "thread_a", "import subprocess\nsubprocess.Popen(['sleep', '60'])\nwhile True:\n    pass")
    assert time.monotonic() - started < 2 + 1
    assert result.restarted
    assert result.error == ("Execution timed out after 2 s; the session was restarted and its "
                            "variables were lost.")
    assert await all_gone(before)
    after = await sandbox.execute("thread_a", "print(open('kept.txt').read())\nx")
    assert after.logs == "files survive\n" and not after.restarted
    assert after.error is not None and after.error.endswith("NameError: name 'x' is not defined")


async def test_a_crash_is_reported_and_the_session_restarts(sandbox: LocalSandbox) -> None:
    result = await sandbox.execute("thread_a", "import os\nos._exit(3)")
    assert result.restarted
    assert result.error is not None and "died (exit status 3)" in result.error
    result = await sandbox.execute("thread_a", "import os, signal\nos.kill(os.getpid(), 9)")
    assert result.error is not None and "killed by SIGKILL" in result.error
    assert (await sandbox.execute("thread_a", "1 + 1")).logs == "2"


async def test_a_cancelled_execution_kills_the_session(sandbox: LocalSandbox) -> None:
    await sandbox.execute("thread_a", "x = 1")
    processes = session_processes(sandbox, "thread_a")
    task = asyncio.create_task(sandbox.execute("thread_a", "import time\ntime.sleep(30)"))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await all_gone(processes)
    result = await sandbox.execute("thread_a", "x")
    assert result.error is not None and "NameError" in result.error


async def test_executions_of_one_session_run_one_at_a_time(sandbox: LocalSandbox) -> None:
    first, second = await asyncio.gather(
        sandbox.execute("thread_a", "import time\ntime.sleep(0.3)\nx = 'set by the first'"),
        sandbox.execute("thread_a", "x"))
    assert first.error is None and second.logs == "'set by the first'"


async def test_reap_idle_closes_idle_sessions(tmp_path: Path) -> None:
    box = LocalSandbox(tmp_path / "sandboxes", Limits(idle_seconds=0.3))
    try:
        await box.execute("thread_a", "x = 1")
        await box.put_file("thread_b", "input.csv", b"1")
        processes = session_processes(box, "thread_a")
        assert await box.reap_idle() == 0
        await asyncio.sleep(0.4)
        assert await box.reap_idle() == 2
        assert await all_gone(processes)
        assert not (tmp_path / "sandboxes" / "thread_a").exists()
        assert not (tmp_path / "sandboxes" / "thread_b").exists()
        result = await box.execute("thread_a", "x")  # a fresh session
        assert result.error is not None and "NameError" in result.error
    finally:
        await box.aclose()


async def test_close_kills_the_session_and_removes_its_files(sandbox: LocalSandbox,
                                                             tmp_path: Path) -> None:
    await sandbox.execute("thread_a", "import os\nos.mkdir('locked')\nos.chmod('locked', 0)")
    processes = session_processes(sandbox, "thread_a")
    await sandbox.close("thread_a")
    assert await all_gone(processes)
    assert not (tmp_path / "sandboxes" / "thread_a").exists()


async def test_the_least_recently_used_idle_session_makes_room(tmp_path: Path) -> None:
    box = LocalSandbox(tmp_path / "sandboxes", max_sessions=2)
    try:
        for key in ("thread_a", "thread_b", "thread_c"):
            await box.execute(key, f"name = {key!r}")
        assert not (tmp_path / "sandboxes" / "thread_a").exists()
        assert (await box.execute("thread_b", "name")).logs == "'thread_b'"
        assert (await box.execute("thread_c", "name")).logs == "'thread_c'"
    finally:
        await box.aclose()


async def test_aclose_leaves_no_process_behind(tmp_path: Path) -> None:
    box = LocalSandbox(tmp_path / "sandboxes")
    keys = ["thread_a", "thread_b", "thread_c"]
    for key in keys:
        await box.execute(key, "import threading, time\n"
                               "threading.Thread(target=time.sleep, args=(60,)).start()")
    workers = [box._sessions[key].worker for key in keys]
    processes = set().union(*(session_processes(box, key) for key in keys))
    assert len(processes) >= 3 * 3  # unshare, the namespace's init and the worker, each
    await box.aclose()
    assert all(w is not None and w.proc.returncode is not None for w in workers)
    assert await all_gone(processes)
    with pytest.raises(Exception, match="closed"):
        await box.execute("thread_a", "1")


DYING_SERVER = """
import asyncio, sys
from pathlib import Path
from assistants_server.sandbox import LocalSandbox

async def main(root):
    box = LocalSandbox(Path(root))
    await box.execute("thread_a", "import subprocess\\nsubprocess.Popen(['sleep', '60'])")
    print(box._sessions["thread_a"].worker.proc.pid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main(sys.argv[1]))
"""


async def test_sessions_die_with_the_server(tmp_path: Path) -> None:
    """A server killed outright (SIGKILL: no aclose) takes its sessions with it: each
    namespace's init watches its request pipe and exits when the server's end closes."""
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DYING_SERVER, str(tmp_path / "sandboxes"),
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert server.stdout is not None
    line = await asyncio.wait_for(server.stdout.readline(), 30)
    processes = process_tree(int(line))
    assert len(processes) >= 3
    server.kill()
    await server.wait()
    assert await all_gone(processes)
    quota.unmount_under(tmp_path)  # what the next server's start would do


UNPRIVILEGED_SERVER = """
import asyncio, json, sys
from pathlib import Path
from assistants_server.sandbox import LocalSandbox

async def main(root, python, code):
    box = LocalSandbox(Path(root), python=python)
    try:
        await box.check()
        result = await box.execute("thread_a", code)
    finally:
        await box.aclose()
    print(json.dumps({"mode": box.mode, "logs": result.logs, "error": result.error}))

asyncio.run(main(*sys.argv[1:]))
"""
FORK_BOMB = """
import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
        n += 1
except OSError:
    pass
print(n, os.getpid(), os.getuid())
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="unprivileged already: the whole suite runs so")
async def test_an_unprivileged_server_isolates_with_a_user_namespace() -> None:
    """The server as uid 65534 (nobody) with Debian's /usr/bin/python3 (this venv's Python
    lives under /root, which nobody cannot read): a user namespace, and a fork bomb still
    stops at the process limit."""
    setpriv = shutil.which("setpriv")
    assert setpriv and HAS_SYSTEM_PYTHON, "needs util-linux setpriv and /usr/bin/python3"
    root = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="sandbox-unprivileged-"))
    try:
        os.chmod(root, 0o755)
        os.chown(root, 65534, 65534)
        proc = await asyncio.create_subprocess_exec(
            setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", SYSTEM_PYTHON, "-c",
            UNPRIVILEGED_SERVER, str(root / "sandboxes"), SYSTEM_PYTHON, FORK_BOMB,
            env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await asyncio.to_thread(shutil.rmtree, root)
    assert proc.returncode == 0, err.decode()
    reply = json.loads(out)
    assert reply["mode"] == "userns" and reply["error"] is None
    forked, pid, uid = map(int, reply["logs"].split())
    assert 0 < forked < 64 and pid == 2 and uid == 0  # root of its namespace, no capabilities


async def test_isolation_none_runs_code_without_namespaces(tmp_path: Path) -> None:
    """The explicit opt-out: same API, relative paths work, but nothing is isolated. As root
    it still drops to the session's uid, so its Python must be readable by others."""
    python = SYSTEM_PYTHON if os.geteuid() == 0 and HAS_SYSTEM_PYTHON else sys.executable
    box = LocalSandbox(tmp_path / "sandboxes", Limits(wall_seconds=2), python=python,
                       isolation="none")
    try:
        await box.check()  # nothing to check
        await box.put_file("thread_a", "in.txt", b"input")
        result = await box.execute(
            "thread_a", "data = open('in.txt').read()\nopen('out.txt', 'w').write(data)\ndata")
        assert result.logs == "'input'" and result.files == ["out.txt"]
        result = await box.execute("thread_a", "while True:\n    pass")
        assert result.restarted
    finally:
        await box.aclose()


async def test_cpu_time_is_limited_per_execution(tmp_path: Path) -> None:
    box = LocalSandbox(tmp_path / "sandboxes", Limits(cpu_seconds=1, wall_seconds=20))
    try:
        assert (await box.execute("thread_a", "x = 1")).error is None  # the session is up
        started = time.monotonic()
        result = await box.execute("thread_a", "while True:\n    pass")
        # Stopped by the CPU budget, long before the wall-clock one (a loaded machine may give
        # the cell its one CPU second slowly, so the bound is half the wall limit, not 1 s).
        assert time.monotonic() - started < 10
        assert result.error is not None
        assert result.error.endswith("CpuTimeExceeded: CPU time limit of 1 s exceeded")
        assert not result.restarted
        assert (await box.execute("thread_a", "x")).logs == "1"  # a fresh budget, same session
    finally:
        await box.aclose()


async def test_check_says_why_isolation_is_unavailable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated with an option `unshare` refuses: the reason reaches the message."""
    from assistants_server.sandbox import IsolationUnavailable, launch

    monkeypatch.setattr(launch, "NAMESPACES", ("--no-such-namespace", *launch.NAMESPACES))
    box = LocalSandbox(tmp_path / "sandboxes")
    try:
        with pytest.raises(IsolationUnavailable, match="no-such-namespace"):
            await box.check()
    finally:
        await box.aclose()


async def test_a_python_installed_under_tmp_still_runs_isolated(tmp_path: Path) -> None:
    """The jail's private /tmp must not hide an interpreter (a virtualenv) that lives there."""
    import venv

    home = Path(tempfile.mkdtemp(prefix="venv-", dir="/tmp"))
    try:
        venv.EnvBuilder(with_pip=False, symlinks=True).create(home)
        sandbox = LocalSandbox(tmp_path / "sessions", python=str(home / "bin" / "python"))
        try:
            await sandbox.check()
            result = await sandbox.execute("t", "import sys, os\nprint(sys.prefix, os.getcwd())")
            assert result.error is None and result.logs.split() == [str(home), "/mnt/data"]
        finally:
            await sandbox.aclose()
    finally:
        shutil.rmtree(home, ignore_errors=True)
