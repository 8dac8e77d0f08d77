"""The byte quota of a session's /mnt/data (`Limits.disk_bytes`).

A server running as root mounts a tmpfs of the quota's size on the session's directory before
the session's process starts: the sandbox binds that directory at /mnt/data, so a write past
the quota fails there with ENOSPC, and the server reads and writes the files as before. An
unprivileged server cannot mount in its own namespace; there the sandbox measures the directory
after each execution and removes what an execution wrote when it went over (`usage`). Blocking
calls: run them in a thread."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

MS_NOSUID, MS_NODEV, MNT_DETACH = 2, 4, 2
_libc = ctypes.CDLL(None, use_errno=True)


def mount(directory: Path, size: int, owner: tuple[int, int] | None) -> None:
    """A tmpfs of `size` bytes on `directory`, private to `owner` (unless already mounted)."""
    if os.path.ismount(directory):
        return
    options = f"size={size},mode=0700" + (f",uid={owner[0]},gid={owner[1]}" if owner else "")
    if _libc.mount(b"sandbox-data", os.fsencode(directory), b"tmpfs",
                   ctypes.c_ulong(MS_NOSUID | MS_NODEV), options.encode()) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"mounting the session's {size >> 20} MiB /mnt/data on "
                            f"{directory}: {os.strerror(code)}")


def unmount(directory: Path) -> None:
    """Detach the mount on `directory`, if there is one (its files go with it)."""
    if os.path.ismount(directory) and _libc.umount2(os.fsencode(directory), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):
            raise OSError(code, f"unmounting {directory}: {os.strerror(code)}")


def unmount_under(parent: Path) -> None:
    """Detach every mount below `parent` (the sessions of a server that was killed), deepest
    first, so that its directory can be removed."""
    prefix = os.path.realpath(parent).rstrip("/") + "/"
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            points = [_unescape(line.split()[4]) for line in f]
    except OSError:
        return
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        try:
            unmount(Path(point))
        except OSError as exc:
            log.warning("could not unmount %s: %s", point, exc)


def usage(directory: Path) -> int:
    """Bytes the files under `directory` occupy (allocated blocks; links not followed)."""
    total, pending = 0, [str(directory)]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                total += entry.stat(follow_symlinks=False).st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
            except OSError:
                continue
    return total


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for escaped, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(escaped, char)
    return field
