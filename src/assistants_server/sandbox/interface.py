"""What the code_interpreter tool sees of a sandbox: the `Sandbox` Protocol, the result of one
execution, the resource limits, and the errors a sandbox raises. An exception in user code is
not an error here: it is reported in `ExecutionResult.error` and the session lives on."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal, Protocol

Isolation = Literal["namespaces", "none"]

WORK_DIR = "/mnt/data"
"""Where a session's working directory appears to user code (the hosted tool's path)."""


class SandboxError(Exception):
    """The sandbox itself failed (could not start a session, too many sessions, closed)."""


class IsolationUnavailable(SandboxError):
    """Namespace isolation does not work on this machine; the message says why."""


class SandboxPathError(SandboxError, ValueError):
    """A file name or path was refused: it escapes the working directory, names a symlink or
    something other than a regular file, or is too large."""


@dataclass(slots=True, frozen=True)
class ExecutionResult:
    logs: str
    """stdout and stderr interleaved as printed, truncated with a note, then the repr of the
    last expression's value (as Jupyter displays it)."""
    images: list[bytes] = field(default_factory=list)
    """PNG bytes of the matplotlib figures shown or left open by the execution."""
    files: list[str] = field(default_factory=list)
    """Paths, relative to the working directory, of files the execution created or modified."""
    error: str | None = None
    """None on success; the exception's short traceback; or why the session was lost."""
    restarted: bool = False
    """The session's process died (timeout, limit, crash): the next call starts a fresh one."""


@dataclass(slots=True, frozen=True)
class Limits:
    """Per-session resource limits. Memory and CPU are per process (rlimits); see SANDBOX.md."""

    wall_seconds: float = 30.0
    """Wall-clock time of one execution; past it the session is killed and restarted."""
    cpu_seconds: int = 60
    """CPU seconds one process may use during one execution."""
    memory_bytes: int = 1 << 30
    """Address space of each process (RLIMIT_AS)."""
    max_processes: int = 64
    """Processes and threads of the session together (RLIMIT_NPROC on the session's uid)."""
    max_file_bytes: int = 100_000_000
    """Largest file the session may write (RLIMIT_FSIZE); also what `read_file` returns at most."""
    max_open_files: int = 1024
    max_output_chars: int = 20_000
    """Longer logs keep their head and tail around a note saying how much was left out."""
    tmp_bytes: int = 256 << 20
    """Size of the session's private /tmp and /dev/shm (memory-backed)."""
    disk_bytes: int = 512 << 20
    """Bytes the session's /mnt/data may hold, the files put there included: a memory-backed
    mount of this size when the server runs as root, measured after each execution otherwise
    (see `quota`)."""
    idle_seconds: float = 1200.0
    """A session unused this long is closed by `reap_idle` (processes and files)."""
    start_seconds: float = 15.0
    """How long a session's process may take to start before it is considered failed."""

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ValueError(f"Limits.{f.name} must be positive")


class Sandbox(Protocol):
    """Stateful Python sessions, one per thread, each with its own working directory."""

    async def execute(self, session_key: str, code: str) -> ExecutionResult: ...

    async def put_file(self, session_key: str, name: str, data: bytes) -> str:
        """Write `name` into the session's working directory; returns "/mnt/data/<name>"."""
        ...

    async def read_file(self, session_key: str, path: str) -> bytes:
        """A file of the working directory ("out.csv" or "/mnt/data/out.csv")."""
        ...

    async def close(self, session_key: str) -> None:
        """Stop the session's processes and remove its working directory."""
        ...

    async def reap_idle(self) -> int:
        """Close the sessions idle longer than `Limits.idle_seconds`; returns how many."""
        ...

    def session_count(self) -> int:
        """How many sessions are open (for the metrics)."""
        ...

    async def aclose(self) -> None:
        """Close every session (server shutdown)."""
        ...
