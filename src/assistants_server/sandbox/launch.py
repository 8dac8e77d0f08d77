"""How a session's process is started: which isolation mode applies, the command line
(`unshare` making the namespaces, then the sandbox's Python running the worker), its clean
environment, what of the host it may see, and the configuration frame it is sent first."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict

from .interface import WORK_DIR, Isolation, IsolationUnavailable, Limits, SandboxError

Mode = Literal["root", "userns", "none"]

SANDBOX_PACKAGE = str(Path(__file__).resolve().parent)
# The in-sandbox modules (wire, jail, cell, worker) are loaded as a package of their own, so
# that nothing of the server (nor its dependencies) is imported into the sandbox.
BOOTSTRAP = (
    "import sys,types;"
    "p=types.ModuleType('_assistants_sandbox');p.__path__=[sys.argv[1]];"
    "sys.modules[p.__name__]=p;sys.dont_write_bytecode=True;"
    "from _assistants_sandbox import worker;worker.main()"
)
NAMESPACES = ("--mount", "--net", "--pid", "--ipc", "--uts", "--cgroup", "--fork", "--kill-child")
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# /etc is not exposed whole: operators keep configuration (and secrets) there.
ETC_PATHS = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
             "/etc/timezone", "/etc/alternatives", "/etc/fonts", "/etc/ssl/certs",
             "/etc/mime.types", "/etc/nsswitch.conf", "/etc/protocols", "/etc/services")
INSPECT = ("import json,site,sys;print(json.dumps({'paths':[sys.prefix,sys.base_prefix,"
           "sys.exec_prefix,sys.base_exec_prefix,*site.getsitepackages()],"
           "'version':'%d.%d'%sys.version_info[:2]}))")


class SessionConfig(TypedDict):
    """The first frame the server sends a new worker: how to confine itself."""

    mode: Mode
    """"root" (real root: namespaces, then setuid to `uid`), "userns" (an unprivileged server:
    a user namespace, then all capabilities dropped) or "none" (no namespaces)."""
    work_dir: str
    """The session's directory on the host, bound at /mnt/data."""
    new_root: str
    """An empty host directory the new root's tmpfs is mounted on (inside the mount namespace)."""
    expose: list[str]
    """Host paths made visible read-only at the same place: /usr, the Python installation..."""
    uid: int | None
    gid: int | None
    cpu_seconds: int
    memory_bytes: int
    max_processes: int
    max_file_bytes: int
    max_open_files: int
    max_output_chars: int
    tmp_bytes: int


def resolve_mode(isolation: Isolation) -> Mode:
    """Real root isolates with plain namespaces and a setuid to a per-session uid; anyone
    else needs a user namespace (unprivileged ones must be enabled)."""
    if isolation == "none":
        return "none"
    return "root" if os.geteuid() == 0 else "userns"


@dataclass(frozen=True, slots=True)
class Installation:
    """What the sandbox's Python needs from the host, found by asking that Python."""

    python: str
    expose: tuple[str, ...]
    unshare: str | None


async def inspect(python: str, mode: Mode, root_dir: Path) -> Installation:
    executable = python if os.path.isabs(python) else shutil.which(python)
    if executable is None:
        raise SandboxError(f"the sandbox's Python {python!r} was not found")
    proc = await asyncio.create_subprocess_exec(
        executable, "-I", "-c", INSPECT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={"PATH": "/usr/bin:/bin"})
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        raise SandboxError(f"the sandbox's Python {executable} did not answer in 60 s") from None
    if proc.returncode != 0:
        raise SandboxError(f"the sandbox's Python {executable} failed: {err.decode()[-500:]}")
    found = json.loads(out)
    etc_python = f"/etc/python{found['version']}"  # Debian's sitecustomize lives there
    expose = await asyncio.to_thread(
        exposable, (*SYSTEM_PATHS, *ETC_PATHS, etc_python, *found["paths"]), root_dir)
    unshare = shutil.which("unshare", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if mode != "none" and unshare is None:
        raise IsolationUnavailable("util-linux `unshare` was not found in /usr/bin or /bin")
    return Installation(executable, expose, unshare)


def exposable(paths: tuple[str, ...], root_dir: Path) -> tuple[str, ...]:
    """The paths that exist, once each. The sessions' directory (and so the server's data)
    must not be under any of them, or every session could read every other."""
    existing = tuple(dict.fromkeys(p for p in paths if os.path.lexists(p)))
    root = os.path.realpath(root_dir)
    for path in existing:
        real = os.path.realpath(path)
        if real == "/" or root == real or root.startswith(real.rstrip("/") + "/"):
            raise SandboxError(f"the sandbox directory {root} is inside {real}, which sessions "
                               "can read: choose a sandbox directory elsewhere")
    return existing


def command(mode: Mode, installation: Installation) -> list[str]:
    worker = [installation.python, "-I", "-c", BOOTSTRAP, SANDBOX_PACKAGE]
    if mode == "none":
        return worker
    assert installation.unshare is not None
    user = ["--user", "--map-root-user"] if mode == "userns" else []
    return [installation.unshare, *user, *NAMESPACES, "--", *worker]


def environment(mode: Mode, installation: Installation, work_dir: Path) -> dict[str, str]:
    """A clean environment: nothing of the server's (API keys, ASSISTANTS_*) gets through."""
    home = str(work_dir) if mode == "none" else WORK_DIR
    bin_dir = os.path.dirname(installation.python)
    return {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{home}/.config/matplotlib",  # keeps its font cache across restarts
        "XDG_CACHE_HOME": f"{home}/.cache",
        # One thread per BLAS and one malloc arena less: threads count against the process
        # limit and reserve address space against the memory limit.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2",
        "PYTHONUNBUFFERED": "1",
    }


def session_config(mode: Mode, installation: Installation, limits: Limits, work_dir: Path,
                   new_root: Path, owner: tuple[int, int] | None) -> SessionConfig:
    return SessionConfig(
        mode=mode, work_dir=str(work_dir), new_root=str(new_root),
        expose=list(installation.expose),
        uid=owner[0] if owner else None, gid=owner[1] if owner else None,
        cpu_seconds=limits.cpu_seconds, memory_bytes=limits.memory_bytes,
        max_processes=limits.max_processes, max_file_bytes=limits.max_file_bytes,
        max_open_files=limits.max_open_files, max_output_chars=limits.max_output_chars,
        tmp_bytes=limits.tmp_bytes)
