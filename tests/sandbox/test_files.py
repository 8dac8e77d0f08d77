"""The working directory, /mnt/data inside: files written by code are reported and readable,
files put by the server are readable by absolute and relative path, and the server's side
never follows what user code planted (.., symlinks, FIFOs) out of the directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistants_server.sandbox import Limits, LocalSandbox, SandboxPathError


async def test_written_file_is_reported_and_readable(sandbox: LocalSandbox) -> None:
    code = ("import csv\nwith open('/mnt/data/out.csv', 'w', newline='') as f:\n"
            "    csv.writer(f).writerows([['a', 'b'], [1, 2]])")
    result = await sandbox.execute("thread_a", code)
    assert result.files == ["out.csv"]
    assert await sandbox.read_file("thread_a", "out.csv") == b"a,b\r\n1,2\r\n"
    assert await sandbox.read_file("thread_a", "/mnt/data/out.csv") == b"a,b\r\n1,2\r\n"


async def test_files_in_subdirectories_are_reported(sandbox: LocalSandbox) -> None:
    code = "import os\nos.makedirs('charts')\nopen('charts/a.txt', 'w').write('x')"
    result = await sandbox.execute("thread_a", code)
    assert result.files == ["charts/a.txt"]
    assert await sandbox.read_file("thread_a", "/mnt/data/charts/a.txt") == b"x"


async def test_only_files_changed_by_this_execution_are_reported(sandbox: LocalSandbox) -> None:
    await sandbox.put_file("thread_a", "input.csv", b"1,2\n")
    await sandbox.execute("thread_a", "open('old.txt', 'w').write('old')")
    result = await sandbox.execute(
        "thread_a", "data = open('input.csv').read()\nopen('new.txt', 'w').write(data)")
    assert result.files == ["new.txt"]
    result = await sandbox.execute("thread_a", "open('old.txt', 'a').write('er')")
    assert result.files == ["old.txt"]


async def test_put_file_is_readable_by_absolute_and_relative_path(sandbox: LocalSandbox) -> None:
    path = await sandbox.put_file("thread_a", "data.csv", b"x,y\n3,4\n")
    assert path == "/mnt/data/data.csv"
    code = ("print(open('/mnt/data/data.csv').read() == open('data.csv').read())\n"
            "open('data.csv').read()")
    result = await sandbox.execute("thread_a", code)
    assert result.logs == "True\n'x,y\\n3,4\\n'"
    assert result.files == []


async def test_put_file_can_be_changed_by_the_code(sandbox: LocalSandbox) -> None:
    await sandbox.put_file("thread_a", "data.csv", b"old")
    result = await sandbox.execute("thread_a", "open('data.csv', 'w').write('new')")
    assert result.error is None and result.files == ["data.csv"]


async def test_put_file_refuses_names_that_are_not_plain(sandbox: LocalSandbox) -> None:
    for name in ("../escape.txt", "a/b.txt", "", "..", "x\0y"):
        with pytest.raises(SandboxPathError):
            await sandbox.put_file("thread_a", name, b"data")


async def test_put_file_replaces_a_planted_symlink_without_following_it(
        sandbox: LocalSandbox, tmp_path: Path) -> None:
    victim = tmp_path / "server-file.txt"
    victim.write_text("server's own")
    await sandbox.execute("thread_a", f"import os\nos.symlink({str(victim)!r}, 'input.csv')")
    await sandbox.put_file("thread_a", "input.csv", b"uploaded")
    assert victim.read_text() == "server's own"
    assert await sandbox.read_file("thread_a", "input.csv") == b"uploaded"


async def test_read_file_refuses_parent_escapes(sandbox: LocalSandbox, tmp_path: Path) -> None:
    (tmp_path / "data" / "secret.db").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "data" / "secret.db").write_text("secret")
    await sandbox.execute("thread_a", "1")
    for path in ("../secret.db", "/mnt/data/../../secret.db", "sub/../../secret.db",
                 "/etc/passwd", str(tmp_path / "data" / "secret.db")):
        with pytest.raises(SandboxPathError):
            await sandbox.read_file("thread_a", path)


async def test_read_file_refuses_symlinks_pointing_outside(
        sandbox: LocalSandbox, tmp_path: Path) -> None:
    secret = tmp_path / "data" / "secret.db"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("secret")
    code = (f"import os\nos.symlink({str(secret)!r}, 'link.db')\n"
            f"os.symlink({str(secret.parent)!r}, 'datadir')\nos.symlink('/', 'root')")
    await sandbox.execute("thread_a", code)
    for path in ("link.db", "datadir/secret.db", "/mnt/data/root/etc/passwd"):
        with pytest.raises(SandboxPathError):
            await sandbox.read_file("thread_a", path)


async def test_read_file_refuses_what_is_not_a_regular_file(sandbox: LocalSandbox) -> None:
    await sandbox.execute("thread_a", "import os\nos.mkfifo('pipe')\nos.mkdir('folder')")
    for path in ("pipe", "folder"):  # a FIFO must not hang the server either
        with pytest.raises(SandboxPathError):
            await sandbox.read_file("thread_a", path)


async def test_read_file_of_a_missing_file_raises_file_not_found(sandbox: LocalSandbox) -> None:
    await sandbox.execute("thread_a", "1")
    with pytest.raises(FileNotFoundError):
        await sandbox.read_file("thread_a", "nope.txt")
    with pytest.raises(FileNotFoundError):
        await sandbox.read_file("thread_never_started", "nope.txt")


async def test_a_file_too_large_to_write_fails_in_the_code(tmp_path: Path) -> None:
    box = LocalSandbox(tmp_path / "sandboxes", Limits(max_file_bytes=1_000_000))
    try:
        code = "with open('big.bin', 'wb') as f:\n    f.write(b'x' * 2_000_000)"
        result = await box.execute("thread_a", code)
        assert result.error is not None and "File too large" in result.error
        assert not result.restarted
    finally:
        await box.aclose()
