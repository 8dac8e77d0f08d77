"""`ASSISTANTS_WORKERS=N`: N server processes on one port, each listening on a socket of its own.

The sockets share the port through SO_REUSEPORT, and the kernel spreads new connections over
them evenly. With one socket shared by every process (uvicorn's own workers), uvloop's accept
loop let the process that woke first take a whole burst of connections: under 50 kept-alive
clients one process ran at 94% of a core and the other at 37%.

The supervisor restarts a process that dies after it was up (with a growing pause while its
replacements keep dying young), gives up only when one dies at the very first start (the port
is taken, the configuration is wrong), and on SIGINT or SIGTERM stops them
all the way uvicorn stops: each finishes its requests, lets its runs finish within the grace
period and hands back the rest (stopping.py).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

from prometheus_client import multiprocess

from assistants_server.metrics import MULTIPROCESS_DIR

log = logging.getLogger("assistants_server")
APP = "assistants_server.app:create_app"
STARTUP_SECONDS = 10.0  # a process that dies sooner after its start died young
MAX_BACKOFF_SECONDS = 30.0
STOP_SECONDS = 10.0  # beyond the graceful shutdown's timeout: then a process is killed


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def serve_workers(options: dict[str, Any], workers: int) -> int:
    """Run `workers` processes serving the app with uvicorn `options` until told to stop."""
    # Fail here, once, if the port is taken, rather than in every process.
    try:
        listening_socket(options["host"], options["port"]).close()
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s. Stop what uses that port or set "
                  "ASSISTANTS_PORT.", options["host"], options["port"], exc.strerror or exc)
        return 1
    context = multiprocessing.get_context("spawn")
    stopping: list[int] = []
    # One directory for the processes' metrics (prometheus-client's multiprocess mode), so a
    # scrape that any of them answers counts them all; the processes inherit it.
    metrics_dir = tempfile.mkdtemp(prefix="assistants-metrics-")
    os.environ[MULTIPROCESS_DIR] = metrics_dir

    def stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    running: list[_Worker] = []
    slots = [_Slot() for _ in range(workers)]
    failed = False
    try:
        for _ in range(workers):
            running.append(_start(context, options))
        while not stopping:
            time.sleep(0.2)
            for i, worker in enumerate(running):
                if not worker.serving and worker.ready.is_set():
                    worker.serving = True  # from now on its death is not a failed start
                    log.info("server process %d is serving", worker.process.pid)
                if (worker.process.is_alive() or stopping
                        or time.monotonic() < slots[i].restart_at):
                    continue
                if not slots[i].restarts and not worker.ready.is_set():
                    log.error("server process %d exited before it could serve (code %s); "
                              "stopping", worker.process.pid, worker.process.exitcode)
                    failed = True
                    stopping.append(signal.SIGTERM)
                    break
                if slots[i].noticed is not worker.process and worker.process.pid:
                    multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                        worker.process.pid)  # its live gauges go
                if slots[i].died(worker):
                    running[i] = _start(context, options)
    finally:
        for worker in running:
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        for worker in running:
            worker.process.join(options.get("timeout_graceful_shutdown", 0) + STOP_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.environ.pop(MULTIPROCESS_DIR, None)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 1 if failed else 0


@dataclass
class _Worker:
    process: BaseProcess
    started: float  # monotonic time
    ready: Any  # a multiprocessing Event, set once the process serves
    serving: bool = False  # the supervisor saw `ready` (and said so in the log)


class _Slot:
    """One of the N processes' places. Only its first process can fail the server, by dying
    before it serves (the configuration is wrong: restarting won't help); a process that dies
    later, however soon after a restart, is started again, after a pause that doubles while
    its successors keep dying young (up to MAX_BACKOFF_SECONDS)."""

    def __init__(self) -> None:
        self.restarts = 0
        self.backoff = 0.0
        self.restart_at = 0.0  # not before this (monotonic time)
        self.noticed: BaseProcess | None = None

    def died(self, worker: _Worker) -> bool:
        """Note the death of `worker`; True when its successor is to start now."""
        now, process = time.monotonic(), worker.process
        if self.noticed is not process:  # first seen dead: decide the pause
            self.noticed = process
            young = now - worker.started < STARTUP_SECONDS
            self.backoff = min(MAX_BACKOFF_SECONDS, self.backoff * 2 or 0.5) if young else 0.0
            self.restart_at = now + self.backoff
            log.warning("server process %d exited (code %s); starting another%s",
                        process.pid, process.exitcode,
                        f" in {self.backoff:.1f} s" if self.backoff else "")
            if self.backoff:
                return False
        self.restarts += 1
        return True


def _start(context: Any, options: dict[str, Any]) -> _Worker:
    ready = context.Event()
    process = context.Process(target=_serve_one, args=(options, ready), daemon=False)
    process.start()
    return _Worker(process, time.monotonic(), ready)


def _serve_one(options: dict[str, Any], ready: Any) -> None:
    import uvicorn

    sock = listening_socket(options["host"], options["port"])
    server = uvicorn.Server(uvicorn.Config(APP, factory=True, **options))

    def announce() -> None:  # to the supervisor: this process got as far as serving
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            ready.set()

    threading.Thread(target=announce, daemon=True).start()
    server.run(sockets=[sock])
