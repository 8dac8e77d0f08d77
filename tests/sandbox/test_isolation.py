"""Escapes, each contained and reported while the server (this test process) is unaffected:
no network, none of the server's files or environment, no privileges, processes and memory
bounded, no signal reaching outside. These need namespace isolation: where it is missing the
fixture's check() fails them with the reason, it does not skip them."""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from assistants_server.sandbox import Limits, LocalSandbox, SandboxError
from assistants_server.sandbox.launch import exposable


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Plays the server's data directory: a database beside the sandboxes' directory."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "assistants.db").write_text("the server's database")
    return data


@pytest.fixture
async def sandbox(data_dir: Path) -> AsyncIterator[LocalSandbox]:
    box = LocalSandbox(data_dir / "sandboxes", Limits(wall_seconds=20))
    await box.check()
    yield box
    await box.aclose()


@pytest.fixture
def home_secret() -> Iterator[Path]:
    """A file in root's home (/root here; the test user's home otherwise)."""
    path = Path.home() / f".sandbox-test-secret-{secrets.token_hex(4)}"
    path.write_text("home secret")
    yield path
    path.unlink()


async def run_json(sandbox: LocalSandbox, code: str) -> object:
    result = await sandbox.execute("thread_a", code + "\nimport json\nprint(json.dumps(out))")
    assert result.error is None, result.error
    return json.loads(result.logs)


async def test_network_is_unreachable(sandbox: LocalSandbox) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        code = (f"import socket\nout = []\nfor address in [('127.0.0.1', {port}), "
                "('1.1.1.1', 53), ('1.1.1.1', 443)]:\n    try:\n"
                "        socket.create_connection(address, timeout=3)\n"
                "        out.append('connected')\n    except OSError as exc:\n"
                "        out.append(type(exc).__name__)")
        out = await run_json(sandbox, code)
        assert out == ["OSError"] * 3
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever reached the test's listening socket


async def test_only_loopback_exists_and_it_is_down(sandbox: LocalSandbox) -> None:
    out = await run_json(sandbox, "import socket\nout = socket.if_nameindex()")
    assert out == [[1, "lo"]]


async def test_server_files_are_invisible(sandbox: LocalSandbox, data_dir: Path,
                                          home_secret: Path, tmp_path: Path) -> None:
    await sandbox.put_file("thread_other", "other.csv", b"another thread's file")
    (tmp_path / "test-file.txt").write_text("test's own")
    paths = [data_dir / "assistants.db", data_dir / "sandboxes" / "thread_other" / "other.csv",
             home_secret, tmp_path / "test-file.txt", Path("/mnt/data/../../") / data_dir.name,
             Path("/etc/shadow"), Path("/root")]
    code = (f"import os\nout = {{}}\nfor path in {[str(p) for p in paths]!r}:\n    try:\n"
            "        out[path] = open(path).read()\n    except OSError as exc:\n"
            "        out[path] = type(exc).__name__")
    out = await run_json(sandbox, code)
    assert isinstance(out, dict)
    for path in paths[:-2]:
        assert out[str(path)] == "FileNotFoundError", path
    assert out["/etc/shadow"] == "FileNotFoundError"  # /etc is not exposed whole
    assert out["/root"] in ("FileNotFoundError", "IsADirectoryError")
    listing = await run_json(sandbox, "import os\nout = sorted(os.listdir('/root'))"
                             " if os.path.isdir('/root') else []")
    assert home_secret.name not in listing  # only the Python installation, if under /root


async def test_environment_is_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANTS_SECRET_FOR_TEST", "s3cret-value")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    box = LocalSandbox(tmp_path / "sandboxes")
    try:
        result = await box.execute("thread_a", "import os\ndict(os.environ)")
    finally:
        await box.aclose()
    assert "ASSISTANTS_SECRET_FOR_TEST" not in result.logs and "s3cret" not in result.logs
    assert "OPENAI_API_KEY" not in result.logs and "sk-test-key" not in result.logs
    assert "'HOME': '/mnt/data'" in result.logs


async def test_code_runs_without_privileges(sandbox: LocalSandbox) -> None:
    code = ("import os\nstatus = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
            "out = {k: status[k].strip() for k in ('CapEff', 'CapPrm', 'CapBnd', 'NoNewPrivs')}\n"
            "out['uid'] = os.getuid()\nout['pid'] = os.getpid()")
    out = await run_json(sandbox, code)
    assert isinstance(out, dict)
    assert out["CapEff"] == out["CapPrm"] == out["CapBnd"] == "0000000000000000"
    assert out["NoNewPrivs"] == "1"
    if os.geteuid() == 0:
        assert out["uid"] != 0  # a uid of its own, not the server's root
    assert out["pid"] == 2  # its own PID namespace, under its init


async def test_only_the_work_dir_and_tmp_are_writable(sandbox: LocalSandbox) -> None:
    code = ("out = {}\nfor path in ['/usr/x', '/etc/x', '/x', '/tmp/x', '/mnt/data/x']:\n"
            "    try:\n        open(path, 'w').close()\n        out[path] = 'written'\n"
            "    except OSError as exc:\n        out[path] = exc.strerror")
    out = await run_json(sandbox, code)
    assert out == {"/usr/x": "Read-only file system", "/etc/x": "Read-only file system",
                   "/x": "Read-only file system", "/tmp/x": "written", "/mnt/data/x": "written"}


async def test_host_processes_are_invisible(sandbox: LocalSandbox) -> None:
    out = await run_json(sandbox, "import os\nout = sorted(int(p) for p in os.listdir('/proc')"
                         " if p.isdigit())")
    assert out == [1, 2]  # the namespace's init and the worker


async def test_signals_cannot_reach_the_server(sandbox: LocalSandbox) -> None:
    code = (f"import os, signal\nout = []\nfor pid in (os.getppid(), {os.getpid()}, -1):\n"
            "    try:\n        os.kill(pid, signal.SIGKILL)\n        out.append('sent')\n"
            "    except OSError as exc:\n        out.append(type(exc).__name__)")
    out = await run_json(sandbox, code)
    # The parent is the namespace's init, which ignores SIGKILL from inside; the test's pid
    # does not exist there (or is not this process); kill(-1) reaches only the sandbox.
    assert isinstance(out, list) and out[0] == "sent"
    assert (await sandbox.execute("thread_a", "'still here'")).logs == "'still here'"


async def test_fork_bomb_is_limited_and_the_session_recovers(sandbox: LocalSandbox) -> None:
    result = await sandbox.execute("thread_a", "import os\nwhile True:\n    os.fork()")
    assert result.error is not None and "BlockingIOError" in result.error
    out = await run_json(sandbox, "import os\nout = [p for p in os.listdir('/proc')"
                         " if p.isdigit()]")
    assert sorted(out) == ["1", "2"]  # the bomb's processes did not outlive the execution


async def test_spawning_processes_is_limited(sandbox: LocalSandbox) -> None:
    code = ("import subprocess\nchildren = []\ntry:\n    while True:\n"
            "        children.append(subprocess.Popen(['sleep', '60']))\n"
            "except OSError as exc:\n    print(len(children), type(exc).__name__)")
    result = await sandbox.execute("thread_a", code)
    count, error = result.logs.split()
    assert int(count) < 64 and error == "BlockingIOError"
    assert (await sandbox.execute("thread_a", "subprocess.run(['true']).returncode")).logs == "0"


async def test_memory_exhaustion_is_contained(sandbox: LocalSandbox) -> None:
    result = await sandbox.execute("thread_a", "x = 1\nblob = bytearray(4 * 1024 ** 3)")
    assert result.error is not None
    assert "MemoryError" in result.error or result.restarted
    after = await sandbox.execute("thread_a", "'ok'")
    assert after.logs == "'ok'"


def test_sessions_directory_must_not_be_under_an_exposed_path(tmp_path: Path) -> None:
    """A layout where sessions could read each other's (and the server's) files is refused:
    the sandbox directory under a path every session sees, such as the Python prefix."""
    with pytest.raises(SandboxError, match="choose a sandbox directory elsewhere"):
        exposable(("/usr", str(tmp_path)), tmp_path / "data" / "sandboxes")
    assert exposable(("/usr", str(tmp_path / "venv")), tmp_path / "sandboxes") == ("/usr",)
