"""Inside the sandbox, before any user code: turn the fresh namespaces made by `unshare` into a
jail, then keep the namespace's init alive. Builds a minimal root on a tmpfs out of read-only
bind mounts, pivots into it, drops every privilege and applies the rlimits. Standard library
only (mount(2) and friends through ctypes): it runs under the sandbox's interpreter."""

from __future__ import annotations

import ctypes
import os
import resource
import select
import signal

TYPE_CHECKING = False  # typing itself is an import every cold start would pay for
if TYPE_CHECKING:
    from typing import Any

    from .launch import SessionConfig

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
# glibc has no pivot_root(); its syscall number differs between architectures.
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
# statvfs flags a bind remount must repeat: a user namespace may not clear them (EPERM).
KEPT_FLAGS = {os.ST_NOEXEC: MS_NOEXEC, os.ST_NOATIME: MS_NOATIME,
              os.ST_NODIRATIME: MS_NODIRATIME, os.ST_RELATIME: MS_RELATIME}
DEVICES = ("null", "zero", "full", "random", "urandom")

libc = ctypes.CDLL(None, use_errno=True)


def _call(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    def c(s: str | None) -> bytes | None:
        return None if s is None else os.fsencode(s)

    _call(libc.mount(c(source), c(target), c(fstype), ctypes.c_ulong(flags), c(data)),
          f"mount {source} on {target}")


def _bind(source: str, target: str, *, writable: bool = False) -> None:
    """Bind `source` on `target`, then remount it read-only (unless writable), nosuid, nodev.
    Not recursive: mounts below `source` stay hidden rather than writable."""
    _mount(source, target, None, MS_BIND)
    kept = os.statvfs(target).f_flag
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (0 if writable else MS_RDONLY)
    flags |= sum(ms for st, ms in KEPT_FLAGS.items() if kept & st)
    _mount(None, target, None, flags)


def enter(config: SessionConfig) -> None:
    """Build the jail under `new_root` and move into it, as root of the new mount namespace."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here may reach the host
    root = config["new_root"]
    _mount("sandbox", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=8m")
    # The private /tmp first: a Python installation that lives under /tmp (a virtualenv made
    # there) is then bound inside it rather than hidden by it.
    os.mkdir(root + "/tmp")
    _mount("tmp", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
           f"mode=1777,size={config['tmp_bytes']}")
    bound: list[str] = []
    for path in sorted(config["expose"], key=lambda p: len(os.path.realpath(p))):
        _expose(root, path, bound)
    _make_etc(root, config)
    _make_dev(root, config["tmp_bytes"])
    os.makedirs(root + "/mnt/data")
    _bind(config["work_dir"], root + "/mnt/data", writable=True)
    os.mkdir(root + "/proc")
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _bind(root + "/proc/sys", root + "/proc/sys")
    _pivot(root)
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir("/mnt/data")
    _call(libc.sethostname(b"sandbox", 7), "sethostname")


def _expose(root: str, path: str, bound: list[str]) -> None:
    """Make host `path` visible at the same place: bound read-only at its real location, and
    a symlink where `path` itself is one (/bin -> usr/bin). Paths inside a bound one are
    already visible."""
    real = os.path.realpath(path)
    if not os.path.exists(real):
        return
    if not any(real == b or real.startswith(b + "/") for b in bound):
        target = root + real
        if os.path.isdir(real):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "a").close()
        _bind(real, target)
        bound.append(real)
    if real != path and not os.path.lexists(root + path):
        os.makedirs(os.path.dirname(root + path), exist_ok=True)
        os.symlink(real, root + path)


def _make_etc(root: str, config: SessionConfig) -> None:
    """Just enough of /etc for name lookups to answer: the sandbox's own user and hostname."""
    os.makedirs(root + "/etc", exist_ok=True)
    uid = 0 if config["uid"] is None else config["uid"]
    gid = 0 if config["gid"] is None else config["gid"]
    files = {
        "passwd": f"root:x:0:0:root:/root:/bin/sh\nsandbox:x:{uid}:{gid}::/mnt/data:/bin/sh\n",
        "group": f"root:x:0:\nsandbox:x:{gid}:\n",
        "hosts": "127.0.0.1 localhost sandbox\n::1 localhost\n",
        "hostname": "sandbox\n",
    }
    for name, text in files.items():
        if not os.path.lexists(f"{root}/etc/{name}"):
            with open(f"{root}/etc/{name}", "w") as f:
                f.write(text)


def _make_dev(root: str, tmp_bytes: int) -> None:
    os.makedirs(root + "/dev")
    for name in DEVICES:
        open(f"{root}/dev/{name}", "a").close()
        _mount(f"/dev/{name}", f"{root}/dev/{name}", None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    os.mkdir(root + "/dev/shm")  # POSIX semaphores (multiprocessing) live here
    _mount("shm", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
           f"mode=1777,size={tmp_bytes}")


def _pivot(root: str) -> None:
    """Make `root` the root and detach the host's tree from this namespace entirely."""
    machine = os.uname().machine
    number = SYS_PIVOT_ROOT.get(machine)
    if number is None:
        raise OSError(f"pivot_root: unsupported architecture {machine}")
    os.chdir(root)
    _call(libc.syscall(number, b".", b"."), "pivot_root")
    # The old root is now stacked on the new one; detaching it leaves only the jail.
    _call(libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_privileges(config: SessionConfig) -> None:
    """Lose every capability for good: empty bounding set, then setuid to the session's uid
    (which clears the capability sets) or, without a uid, clear them with capset; and
    no_new_privs so no setuid binary or file capability can bring any back."""
    if config["mode"] != "none" or os.geteuid() == 0:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
        for cap in range(last + 1):
            _call(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop bounding capability")
    uid, gid = config["uid"], config["gid"]
    if uid is not None and gid is not None:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    elif config["mode"] == "userns":
        data = (_CapData * 2)()
        _call(libc.capset(ctypes.byref(_CapHeader(0x20080522, 0)), data), "capset")
    _call(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    with open("/proc/self/status") as f:
        caps = [ln for ln in f if ln.startswith(("CapEff:", "CapPrm:"))]
    if any(int(ln.split()[1], 16) for ln in caps):
        raise OSError(f"capabilities remain after dropping them: {caps}")


def apply_limits(config: SessionConfig) -> None:
    infinity = resource.RLIM_INFINITY
    for limit, value in ((resource.RLIMIT_AS, config["memory_bytes"]),
                         (resource.RLIMIT_NPROC, config["max_processes"]),
                         (resource.RLIMIT_FSIZE, config["max_file_bytes"]),
                         (resource.RLIMIT_NOFILE, config["max_open_files"]),
                         (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(limit, (value, value))
    # The worker moves the soft CPU limit before each execution; the wall clock, enforced by
    # the server, is the hard bound.
    resource.setrlimit(resource.RLIMIT_CPU, (config["cpu_seconds"], infinity))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails (EFBIG) instead


def set_dumpable(dumpable: bool) -> None:
    _call(libc.prctl(PR_SET_DUMPABLE, int(dumpable), 0, 0, 0), "dumpable")


def supervise(worker: int) -> None:
    """Be the namespace's init: reap orphans, continue the worker (which stops itself between
    requests) once a request is waiting on the pipe, and exit when the worker exits or the
    server goes away (the request pipe hangs up), which kills the whole namespace."""
    set_dumpable(False)  # the worker runs as the same uid: keep it from ptracing init
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, _ignore)
    poller = select.poll()
    poller.register(0, 0)  # POLLHUP is always reported: the server closed the pipe
    poller.register(wake_r, select.POLLIN)
    while True:
        status, stopped = _reap(worker)
        if status is not None:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)  # like a shell: 128 + signal
        if stopped:  # listen for the next request (not before: the worker reads it)
            poller.modify(0, select.POLLIN)
        events = poller.poll(1000)
        for fd, revents in events:
            if fd == 0 and revents & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                os._exit(0)
            if fd == 0:  # a request: the worker's turn
                poller.modify(0, 0)
                os.kill(worker, signal.SIGCONT)
            if fd == wake_r:
                os.read(wake_r, 512)


def _reap(worker: int) -> tuple[int | None, bool]:
    """Collect every exited child: the worker's wait status if it was among them, and whether
    the worker has stopped (itself, after answering)."""
    found, stopped = None, False
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG | os.WUNTRACED)
        except ChildProcessError:
            return found, stopped
        if pid == 0:
            return found, stopped
        if pid == worker and os.WIFSTOPPED(status):
            stopped = True
        elif pid == worker:
            found = status


def _ignore(*_: Any) -> None:
    """A handler, not SIG_IGN: the wakeup fd only hears signals that have one."""
