"""`ASSISTANTS_WORKERS=N`: N server processes on one port, each listening on a socket of its own.

The sockets share the port through SO_REUSEPORT, and the kernel spreads new connections over
them evenly. With one socket shared by every process (uvicorn's own workers), uvloop's accept
loop let the process that woke first take a whole burst of connections: under 50 kept-alive
clients one process ran at 94% of a core and the other at 37%.

The supervisor restarts a process that dies after it was up, gives up when one dies at
start (the port is taken, the configuration is wrong), and on SIGINT or SIGTERM stops them
all the way uvicorn stops: each finishes its requests, lets its runs finish within the grace
period and hands back the rest (stopping.py).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger("assistants_server")
APP = "assistants_server.app:create_app"
STARTUP_SECONDS = 10.0  # a process that dies sooner failed to start: restarting won't help
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

    def stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes: list[tuple[BaseProcess, float]] = []
    failed = False
    try:
        for _ in range(workers):
            processes.append(_start(context, options))
        while not stopping:
            time.sleep(0.2)
            for i, (process, started) in enumerate(processes):
                if process.is_alive() or stopping:
                    continue
                if time.monotonic() - started < STARTUP_SECONDS:
                    log.error("server process %d exited at start (code %s); stopping",
                              process.pid, process.exitcode)
                    failed = True
                    stopping.append(signal.SIGTERM)
                    break
                log.warning("server process %d exited (code %s); starting another",
                            process.pid, process.exitcode)
                processes[i] = _start(context, options)
    finally:
        for process, _ in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        for process, _ in processes:
            process.join(options.get("timeout_graceful_shutdown", 0) + STOP_SECONDS)
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if failed else 0


def _start(context: Any, options: dict[str, Any]) -> tuple[BaseProcess, float]:
    process = context.Process(target=_serve_one, args=(options,), daemon=False)
    process.start()
    return process, time.monotonic()


def _serve_one(options: dict[str, Any]) -> None:
    import uvicorn

    sock = listening_socket(options["host"], options["port"])
    config = uvicorn.Config(APP, factory=True, **options)
    uvicorn.Server(config).run(sockets=[sock])
