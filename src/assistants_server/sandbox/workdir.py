"""A session's working directory on the host (seen as /mnt/data inside): created for the
session's uid, files put into it and read out of it without ever following a link the user
code planted, and removed with the session. Blocking calls: run them in a thread."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import quota
from .interface import WORK_DIR, SandboxPathError

SESSION_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")
Owner = tuple[int, int] | None


def directory_name(session_key: str) -> str:
    if not SESSION_KEY.fullmatch(session_key):
        raise ValueError(f"invalid sandbox session key {session_key!r}: letters, digits, _ and -")
    return session_key


def create(directory: Path, owner: Owner, quota_bytes: int | None = None) -> None:
    """The directory, private to the session's uid, with a mount of `quota_bytes` on it if
    given. Left over from an earlier process, its files are handed to this session's uid (no
    worker of it runs yet, so nothing races)."""
    existed = directory.exists()
    directory.mkdir(mode=0o700, parents=False, exist_ok=True)
    if quota_bytes is not None:
        quota.mount(directory, quota_bytes, owner)
    if owner is None:
        return
    os.chown(directory, *owner)
    if existed:
        for parent, dirs, files in os.walk(directory):
            for name in dirs + files:
                os.chown(os.path.join(parent, name), *owner, follow_symlinks=False)


def put(directory: Path, name: str, data: bytes, owner: Owner) -> str:
    """Write `name` (a plain file name) through a temporary file renamed over it, so whatever
    the session left under that name (a symlink, a FIFO) is replaced, never written through."""
    if not name or name in (".", "..") or "/" in name or "\0" in name or len(name) > 255:
        raise SandboxPathError(f"invalid file name {name!r}")
    dir_fd = _open_dir(directory)
    try:
        temporary = f".put-{secrets.token_hex(8)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb", closefd=False) as f:
                f.write(data)
            if owner is not None:
                os.fchown(fd, *owner)
        except BaseException:  # e.g. the quota's mount is full: leave no half-written file
            os.unlink(temporary, dir_fd=dir_fd)
            raise
        finally:
            os.close(fd)
        os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    return f"{WORK_DIR}/{name}"


def read(directory: Path, path: str, max_bytes: int) -> bytes:
    """A regular file under the directory, opened one component at a time with O_NOFOLLOW:
    '..' and symlinks (anywhere on the path) are refused, so nothing outside can be read."""
    fd, name = _open_parent(directory, path)
    try:
        file_fd = _open_at(fd, name, os.O_NONBLOCK, path)  # a FIFO must not block us
    finally:
        os.close(fd)
    try:
        if not stat.S_ISREG(os.fstat(file_fd).st_mode):
            raise SandboxPathError(f"{path} is not a regular file")
        with os.fdopen(file_fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    finally:
        os.close(file_fd)
    if len(data) > max_bytes:
        raise SandboxPathError(f"{path} is larger than {max_bytes} bytes")
    return data


def relative_parts(path: str) -> list[str]:
    """"out.csv", "sub/out.csv" or "/mnt/data/out.csv" -> its components under the directory."""
    if "\0" in path:
        raise SandboxPathError("path contains a NUL byte")
    if path == WORK_DIR or path.startswith(WORK_DIR + "/"):
        path = path[len(WORK_DIR):]
    elif path.startswith("/"):
        raise SandboxPathError(f"{path} is outside {WORK_DIR}")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SandboxPathError(f"{path} goes up with '..'")
    if not parts:
        raise SandboxPathError(f"{path!r} names no file")
    return parts


def remove(directory: Path) -> None:
    quota.unmount(directory)
    shutil.rmtree(directory, onerror=_retry_writable)


def trim_to_quota(directory: Path, limit: int, written: list[str]) -> str | None:
    """If the directory holds more than `limit` bytes, remove the files `written` by the last
    execution and say so (for the model); None when it is within its quota."""
    used = quota.usage(directory)
    if used <= limit:
        return None
    for path in written:
        with contextlib.suppress(OSError, SandboxPathError):
            discard(directory, path)
    return (f"{WORK_DIR} went over its quota of {limit >> 20} MiB ({used >> 20} MiB), so the "
            f"files this execution wrote were removed: {', '.join(written) or 'none'}. Delete "
            "files that are no longer needed before writing more.")


def discard(directory: Path, path: str) -> None:
    """Remove the file at `path` under the directory (never through a link), if it is there."""
    fd, name = _open_parent(directory, path)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=fd)
    finally:
        os.close(fd)


def _open_parent(directory: Path, path: str) -> tuple[int, str]:
    """The directory holding `path` (opened one component at a time with O_NOFOLLOW: '..' and
    symlinks are refused) and the last component's name. The caller closes the fd."""
    parts = relative_parts(path)
    fd = _open_dir(directory)
    try:
        for part in parts[:-1]:
            next_fd = _open_at(fd, part, os.O_DIRECTORY, path)
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def _retry_writable(function: Callable[..., Any], path: str, excinfo: Any) -> None:
    """User code may leave directories without permissions (mode 000); a root server goes
    through them anyway, an unprivileged one (owning them) gives itself access first."""
    error = excinfo[1]
    if isinstance(error, FileNotFoundError):
        return
    if not isinstance(error, PermissionError):
        raise error
    if function in (os.rmdir, os.unlink, os.remove):
        os.chmod(os.path.dirname(path), 0o700)
        function(path)
    else:  # could not open or list `path` itself
        os.chmod(path, 0o700)
        shutil.rmtree(path, onerror=_retry_writable)


def _open_dir(directory: Path) -> int:
    return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _open_at(dir_fd: int, name: str, flags: int, path: str) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise SandboxPathError(
                f"{path} goes through a symbolic link or a non-directory") from None
        raise
