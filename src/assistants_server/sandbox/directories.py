"""Where each server process keeps its sandbox sessions: `<data_dir>/sandboxes/<host>-<pid>`.

Sessions belong to the process that started them, and die with it; their directories do not.
A process starting removes those left by processes of this host that are gone (another host's,
on a shared volume, are not its to judge), so a crash does not leave a killed session's files
(up to its byte limit each) on disk forever.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
from pathlib import Path

from . import quota

log = logging.getLogger(__name__)


def process_directory(parent: Path) -> Path:
    """This process's directory under `parent`, after removing those of dead processes."""
    host = socket.gethostname()
    remove_dead(parent, host)
    return parent / f"{host}-{os.getpid()}"


def remove_dead(parent: Path, host: str) -> list[Path]:
    """Remove the directories of this host's processes that no longer run (and of the
    unnamed, `<pid>`, layout); the paths removed."""
    removed = []
    for directory in parent.iterdir() if parent.is_dir() else ():
        name = directory.name
        owner, _, pid = name.rpartition("-") if "-" in name else (host, "", name)
        if owner != host or not pid.isdigit() or _running(int(pid)):
            continue
        quota.unmount_under(directory)  # its sessions' /mnt/data mounts, as root
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    if removed:
        log.info("removed the sandbox directories of %d process(es) that are gone", len(removed))
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: running
        return True
    return True
