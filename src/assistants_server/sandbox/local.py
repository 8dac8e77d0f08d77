"""LocalSandbox: the sessions of this server process, each a long-lived worker process in its
own namespaces (see `launch` and `jail`) with a directory under `root_dir`. Owns the session
table, its uid slots, per-session serialization, the wall-clock deadline, restarts, reaping
and shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from . import launch, quota, workdir
from .interface import (
    WORK_DIR,
    ExecutionResult,
    Isolation,
    IsolationUnavailable,
    Limits,
    SandboxError,
)
from .process import WorkerProcess
from .reply import parse_reply
from .wire import ProtocolError

logger = logging.getLogger(__name__)

MAX_CODE_CHARS = 1_000_000
UID_BLOCKS, UID_BLOCK_SIZE = 100_000, 1024  # default uids: 2e9 + a block chosen by root_dir
JAIL_MOUNTPOINT = ".jail"  # under root_dir; a session key cannot start with "."
PROBE = """
import os, socket
assert os.getcwd() == "/mnt/data", "the working directory is not /mnt/data"
assert os.getpid() == 2, "not in a PID namespace of its own"
assert [n for _, n in socket.if_nameindex()] == ["lo"], "host network interfaces are visible"
with open("/proc/self/status") as f:
    assert all(int(l.split()[1], 16) == 0 for l in f if l.startswith("CapEff")), "capabilities"
assert not os.path.exists({root!r}), "the server's sandbox directory is visible"
"""


@dataclass(slots=True, eq=False)
class _Session:
    key: str
    directory: Path
    slot: int
    owner: workdir.Owner
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    worker: WorkerProcess | None = None
    last_used: float = field(default_factory=time.monotonic)
    closed: bool = False


class LocalSandbox:
    """Sessions on this machine. `isolation="none"` runs user code without namespaces (it
    can then read whatever the server's uid can): only for an operator who chose it."""

    def __init__(self, root_dir: Path, limits: Limits | None = None,
                 python: str = sys.executable, isolation: Isolation = "namespaces", *,
                 max_sessions: int = 32, uid_base: int | None = None) -> None:
        if not 1 <= max_sessions <= UID_BLOCK_SIZE:
            raise ValueError(f"max_sessions must be between 1 and {UID_BLOCK_SIZE}")
        self.root_dir = Path(root_dir).absolute()
        self.limits = limits or Limits()
        self.python = python
        self.mode = launch.resolve_mode(isolation)
        self.max_sessions = max_sessions
        # As root each session runs as its own uid, so RLIMIT_NPROC (counted per uid) bounds
        # each session separately; otherwise all run as the server's uid (in a user namespace).
        # By default the block of uids follows from root_dir, so that servers (or test runs)
        # with different directories on one machine do not share process limits.
        if uid_base is None:
            block = zlib.crc32(str(self.root_dir).encode()) % UID_BLOCKS
            uid_base = 2_000_000_000 + block * UID_BLOCK_SIZE
        self.uid_base = uid_base if os.geteuid() == 0 else None
        self._sessions: dict[str, _Session] = {}
        self._free_slots = list(range(max_sessions - 1, -1, -1))
        self._registry = asyncio.Lock()
        self._installation: launch.Installation | None = None
        self._checked = False
        self._closed = False
        self._mounts_quota = self.mode == "root"  # else `_within_quota` after each execution

    async def check(self) -> None:
        """Raise IsolationUnavailable, saying why, unless a session starts isolated here."""
        if self.mode == "none" or self._checked:
            return
        key = f"probe-{secrets.token_hex(6)}"
        try:
            result = await self.execute(key, PROBE.format(root=str(self.root_dir)))
        except IsolationUnavailable:
            raise
        except SandboxError as exc:
            raise IsolationUnavailable(f"namespace isolation does not work here: {exc}") from None
        finally:
            await self.close(key)
        if result.error is not None:
            raise IsolationUnavailable(f"a probe session is not isolated: {result.error}")
        self._checked = True

    async def execute(self, session_key: str, code: str) -> ExecutionResult:
        if len(code) > MAX_CODE_CHARS:
            return ExecutionResult(logs="", error=f"The code is longer than {MAX_CODE_CHARS:,} "
                                   "characters and was not run.")
        while True:
            session = await self._open(session_key)
            async with session.lock:
                if session.closed:  # closed while we waited: start over with a new one
                    continue
                session.last_used = time.monotonic()
                try:
                    return await self._execute(session, code)
                finally:
                    session.last_used = time.monotonic()

    async def _execute(self, session: _Session, code: str) -> ExecutionResult:
        if session.worker is None:
            session.worker = await self._start(session)
        worker = session.worker
        wall = self.limits.wall_seconds
        try:
            async with asyncio.timeout(wall):
                reply = await worker.call({"op": "exec", "code": code})
            result = parse_reply(reply, self.limits.max_output_chars)
            return result if self._mounts_quota else await self._within_quota(session, result)
        except TimeoutError:
            lost = f"Execution timed out after {wall:g} s"
        except EOFError:
            await worker.kill()
            lost = ("The session was closed" if session.closed else
                    f"The session's process died ({worker.describe_exit()})")
        except ProtocolError as exc:
            lost = f"The session's process answered nonsense ({exc})"
        except BaseException:  # cancelled: the worker is mid-execution, its state unknown
            session.worker = None
            worker.kill_now()
            raise
        session.worker = None
        await worker.kill()
        return ExecutionResult(
            logs="", error=f"{lost}; the session was restarted and its variables were lost.",
            restarted=True)

    async def _within_quota(self, session: _Session, result: ExecutionResult) -> ExecutionResult:
        """Without a mount to stop them, writes past the quota are found after the execution."""
        note = await asyncio.to_thread(
            workdir.trim_to_quota, session.directory, self.limits.disk_bytes, result.files)
        if note is None:
            return result
        error = f"{result.error}\n{note}" if result.error else note
        return dataclasses.replace(result, files=[], error=error)

    async def _start(self, session: _Session) -> WorkerProcess:
        installation = await self._prepare()
        config = launch.session_config(
            self.mode, installation, self.limits, session.directory,
            self.root_dir / JAIL_MOUNTPOINT, session.owner)
        try:
            return await WorkerProcess.start(
                launch.command(self.mode, installation),
                launch.environment(self.mode, installation, session.directory),
                config, self.limits.start_seconds, hold=self.mode == "none")
        except SandboxError as exc:
            if self.mode == "none":
                raise
            raise IsolationUnavailable(
                f"{str(exc).rstrip('.')}. Sandboxed sessions need Linux namespaces: util-linux "
                "unshare, and root or unprivileged user namespaces (see docs/SANDBOX.md)"
            ) from None

    async def _prepare(self) -> launch.Installation:
        if self._installation is None:
            await asyncio.to_thread(self._make_root)
            self._installation = await launch.inspect(self.python, self.mode, self.root_dir)
        return self._installation

    def _make_root(self) -> None:
        # Without namespaces, sessions reach their directory through root_dir by path.
        self.root_dir.mkdir(mode=0o711 if self.mode == "none" else 0o700, parents=True,
                            exist_ok=True)
        (self.root_dir / JAIL_MOUNTPOINT).mkdir(mode=0o700, exist_ok=True)

    async def _open(self, session_key: str) -> _Session:
        """The session of this key, created (directory and uid slot) if needed. Creating and
        closing hold the registry lock, so a new session never races the removal of the
        directory of the one it replaces; finding an open session does not wait for it."""
        name = workdir.directory_name(session_key)
        session = self._sessions.get(session_key)
        if session is not None and not self._closed:
            return session
        async with self._registry:
            if self._closed:
                raise SandboxError("the sandbox is closed")
            session = self._sessions.get(session_key)
            if session is not None:
                return session
            await self._prepare()
            slot = await self._take_slot()
            owner = None if self.uid_base is None else (self.uid_base + slot,) * 2
            directory = self.root_dir / name
            try:
                await asyncio.to_thread(self._create_directory, directory, owner)
            except BaseException:
                self._free_slots.append(slot)
                raise
            session = _Session(session_key, directory, slot, owner)
            self._sessions[session_key] = session
            return session

    def _create_directory(self, directory: Path, owner: workdir.Owner) -> None:
        if self._mounts_quota:
            try:
                return workdir.create(directory, owner, self.limits.disk_bytes)
            except OSError as exc:  # e.g. a container without CAP_SYS_ADMIN
                logger.warning("%s; /mnt/data quotas are measured after each execution instead",
                               exc)
                self._mounts_quota = False
        workdir.create(directory, owner)

    async def _take_slot(self) -> int:
        if not self._free_slots:
            idle = [s for s in self._sessions.values() if not s.lock.locked()]
            if not idle:
                raise SandboxError(f"all {self.max_sessions} sandbox sessions are busy")
            oldest = min(idle, key=lambda s: s.last_used)
            await self._close(self._sessions.pop(oldest.key))
        return self._free_slots.pop()

    async def _close(self, session: _Session) -> None:
        """Kill the session's processes, remove its directory, free its slot (only once its
        processes are gone: the next session of the slot gets the same uid)."""
        session.closed = True
        worker, session.worker = session.worker, None
        try:
            if worker is not None:
                await worker.kill()
            await asyncio.to_thread(workdir.remove, session.directory)
        finally:
            self._free_slots.append(session.slot)

    async def put_file(self, session_key: str, name: str, data: bytes) -> str:
        session = await self._open(session_key)
        limit = self.limits.disk_bytes
        room = limit - await asyncio.to_thread(quota.usage, session.directory)
        if len(data) > room:
            raise SandboxError(f"{name} ({len(data) >> 20} MiB) does not fit in {WORK_DIR}, "
                               f"which has {max(room, 0) >> 20} MiB of its {limit >> 20} MiB left")
        return await asyncio.to_thread(workdir.put, session.directory, name, data, session.owner)

    async def read_file(self, session_key: str, path: str) -> bytes:
        directory = self.root_dir / workdir.directory_name(session_key)
        return await asyncio.to_thread(
            workdir.read, directory, path, self.limits.max_file_bytes)

    async def close(self, session_key: str) -> None:
        async with self._registry:
            session = self._sessions.pop(session_key, None)
            if session is not None:
                await self._close(session)

    def session_count(self) -> int:
        return len(self._sessions)

    async def reap_idle(self) -> int:
        deadline = time.monotonic() - self.limits.idle_seconds
        async with self._registry:
            idle = [s for s in self._sessions.values()
                    if not s.lock.locked() and s.last_used < deadline]
            for session in idle:
                del self._sessions[session.key]
                session.closed = True  # an execute waiting for its lock will open a new one
            await asyncio.gather(*(self._close(s) for s in idle))
        return len(idle)

    async def aclose(self) -> None:
        async with self._registry:
            self._closed = True
            sessions = list(self._sessions.values())
            self._sessions.clear()
            outcomes = await asyncio.gather(*(self._close(s) for s in sessions),
                                            return_exceptions=True)
        for session, outcome in zip(sessions, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                logger.warning("closing sandbox session %s failed: %r", session.key, outcome)


async def probe(python: str = sys.executable) -> None:
    """Raise IsolationUnavailable unless an isolated session starts on this machine."""
    import tempfile

    root = await asyncio.to_thread(tempfile.mkdtemp, prefix="assistants-sandbox-probe-")
    sandbox = LocalSandbox(Path(root) / "sessions", python=python)
    try:
        await sandbox.check()
    finally:
        await sandbox.aclose()
        await asyncio.to_thread(workdir.remove, Path(root))
