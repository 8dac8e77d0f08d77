"""Inside the sandbox: the session's process. Reads its configuration (the first frame on
stdin), confines itself (`jail`), then answers execution requests until stdin closes. The
protocol keeps private copies of the stdin/stdout pipes; fds 1 and 2 are pointed at one
memfd, so what user code and its children print is captured in order, out of the protocol's
way. Standard library only; started by the bootstrap in `launch.py`."""

from __future__ import annotations

import base64
import fcntl
import io
import os
import resource
import signal
import sys
import time

from . import jail, wire
from .cell import CellOutcome, CpuTimeExceeded, Kernel
from .wire import MAX_FILES_REPORTED, truncate

TYPE_CHECKING = False  # typing is an import every cold start would pay for
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from .launch import SessionConfig

MAX_FILES_SCANNED = 10_000
SKIPPED_DIRS = {".config", ".cache", "__pycache__"}  # the worker's own caches (matplotlib...)


def main() -> NoReturn:
    config: Any = wire.receive(0)
    if config is None:
        os._exit(0)
    confine(config)
    protocol_in, protocol_out = os.dup(0), os.dup(1)  # non-inheritable: exec'd children lose them
    own_pid_namespace = config["mode"] != "none"
    if own_pid_namespace:
        pid = os.fork()
        if pid:
            os.close(protocol_in)
            os.close(protocol_out)
            jail.supervise(pid)
        jail.set_dumpable(True)  # the setuid made us undumpable; user code may read /proc/self
    # Through /proc, the working directory stays reachable whatever user code does to its
    # cwd, and without isolation even if the session's uid cannot traverse its ancestors.
    work_dir = f"/proc/self/fd/{os.open('.', os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)}"
    output = Output(config["max_output_chars"])
    kernel = Kernel()
    cpu = CpuBudget(config["cpu_seconds"])
    wire.send(protocol_out, {"op": "ready"})
    pause(own_pid_namespace)
    while (request := wire.receive(protocol_in)) is not None:
        try:
            reply = execute(request, kernel, output, cpu, work_dir, own_pid_namespace)
        except BaseException as exc:  # noqa: B036 - the session must answer whatever happened
            reply = {"logs": output.take(), "images": [], "files": [],
                     "error": f"The sandbox failed while executing: {exc!r}"}
        wire.send(protocol_out, reply)
        pause(own_pid_namespace)
    os._exit(0)


def pause(own_pid_namespace: bool) -> None:
    """Between executions the session uses no CPU, whatever threads a cell left running: the
    worker stops itself, and the namespace's init continues it when the next request arrives
    (`jail.supervise`). Without a namespace of its own, the server does both."""
    if own_pid_namespace:
        os.kill(os.getpid(), signal.SIGSTOP)


def confine(config: SessionConfig) -> None:
    """Enter the jail (unless isolation is off), drop privileges, apply the rlimits; on any
    failure say why on stderr, which the server reads when the session does not start."""
    try:
        if config["mode"] == "none":
            os.chdir(config["work_dir"])
        else:
            jail.enter(config)
        jail.drop_privileges(config)
        jail.apply_limits(config)
    except BaseException as exc:  # noqa: B036 - any failure here is reported the same way
        os.write(2, f"sandbox setup failed: {exc}\n".encode())
        os._exit(70)


def execute(request: dict[str, Any], kernel: Kernel, output: Output, cpu: CpuBudget,
            work_dir: str, own_pid_namespace: bool) -> dict[str, Any]:
    code = request.get("code")
    if request.get("op") != "exec" or not isinstance(code, str):
        return {"logs": "", "images": [], "files": [], "error": "unknown request"}
    before = snapshot(work_dir)
    output.reattach()
    cpu.arm()
    try:
        outcome = kernel.run(code)
    finally:
        cpu.disarm()
    if own_pid_namespace:
        kill_leftovers()
    return {"logs": output.take(display(outcome)),
            "images": [base64.b64encode(png).decode() for png in outcome.images],
            "files": changed_files(before, snapshot(work_dir)),
            "error": outcome.error}


def display(outcome: CellOutcome) -> str:
    parts = [*outcome.notes, *([outcome.display] if outcome.display is not None else [])]
    return "\n".join(parts)


class Output:
    """fds 1 and 2 on one append-only memfd: both streams, and children's, in write order."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.fd = os.memfd_create("output", os.MFD_CLOEXEC)
        fcntl.fcntl(self.fd, fcntl.F_SETFL, os.O_APPEND)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        # Unbuffered text streams, so Python's prints interleave with C-level and child writes.
        self.streams = (_stream(1), _stream(2))
        self.reattach()

    def reattach(self) -> None:
        """Point fds 1 and 2, sys.stdout and sys.stderr at the capture again: a cell that
        closed or replaced them (sys.stdout = StringIO()) must not silence every later one."""
        for fd in (1, 2):
            os.dup2(self.fd, fd)
        sys.stdout, sys.stderr = self.streams

    def take(self, display: str = "") -> str:
        """Everything printed since the last call (then forgotten), with `display` after it,
        truncated to head and tail around a note."""
        for stream in (sys.stdout, sys.stderr):
            try:  # noqa: SIM105
                stream.flush()
            except Exception:  # user code may have replaced or closed them
                pass
        size = os.fstat(self.fd).st_size
        window = 4 * self.max_chars  # bytes: enough for max_chars of UTF-8 either way
        if size <= 2 * window:
            text = os.pread(self.fd, size, 0).decode(errors="replace")
            omitted = 0
        else:
            head = os.pread(self.fd, window, 0).decode(errors="replace")
            tail = os.pread(self.fd, window, size - window).decode(errors="replace")
            text, omitted = head + tail, size - 2 * window
        os.ftruncate(self.fd, 0)
        if display:
            text = f"{text}\n{display}" if text and not text.endswith("\n") else text + display
        return truncate(text, self.max_chars, omitted)


def _stream(fd: int) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8",
                            errors="backslashreplace", write_through=True)


class CpuBudget:
    """RLIMIT_CPU moved before each execution to what is used plus the budget; SIGXCPU then
    raises into user code. User code could lift its own soft limit: the wall clock, enforced
    by the server, is the bound that cannot be escaped."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        signal.signal(signal.SIGXCPU, self._exceeded)

    def arm(self) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = int(usage.ru_utime + usage.ru_stime) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (used + self.seconds, resource.RLIM_INFINITY))

    def disarm(self) -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def _exceeded(self, *_: Any) -> None:
        raise CpuTimeExceeded(f"CPU time limit of {self.seconds} s exceeded")


def kill_leftovers() -> None:
    """Processes started by an execution do not outlive it: kill -1 reaches every process of
    the namespace but init and this one. Then wait until they are gone (our children reaped
    here, orphans by init), since until then they count against RLIMIT_NPROC."""
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        return  # there was none
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
    deadline = time.monotonic() + 2
    own = {"1", str(os.getpid())}
    while time.monotonic() < deadline and any(
            p.isdigit() and p not in own for p in os.listdir("/proc")):
        time.sleep(0.005)


def snapshot(root: str) -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of the regular files under `root`, by relative path."""
    found: dict[str, tuple[int, int]] = {}
    pending = [""]
    while pending and len(found) < MAX_FILES_SCANNED:
        relative = pending.pop()
        try:
            entries = list(os.scandir(os.path.join(root, relative)))
        except OSError:
            continue
        for entry in entries:
            path = f"{relative}/{entry.name}" if relative else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIPPED_DIRS:
                        pending.append(path)
                elif entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    found[path] = (stat.st_mtime_ns, stat.st_size)
            except OSError:
                continue
    return found


def changed_files(before: dict[str, tuple[int, int]],
                  after: dict[str, tuple[int, int]]) -> list[str]:
    return sorted(path for path, state in after.items() if before.get(path) != state)[
        :MAX_FILES_REPORTED]
