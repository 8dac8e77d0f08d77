"""The server's handle on one session's process: start it and wait for it to be ready, send a
request and read the reply (asyncio pipes, so the event loop never waits on the sandbox),
kill it and everything it started, and say how it ended."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any

from . import wire
from .interface import SandboxError
from .launch import SessionConfig


class WorkerProcess:
    def __init__(self, proc: asyncio.subprocess.Process, *, hold: bool) -> None:
        self.proc = proc
        self.hold = hold

    @classmethod
    async def start(cls, argv: list[str], env: dict[str, str], config: SessionConfig,
                    ready_within: float, *, hold: bool = False) -> WorkerProcess:
        """Start the process, send its configuration, wait for "ready". A failure raises
        SandboxError carrying what the process printed on stderr (e.g. why a mount failed).
        `hold`: stop the process between calls (a worker in a PID namespace of its own stops
        itself instead, and its init continues it)."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env, cwd="/", limit=1 << 20,
                # Its own process group: the terminal's Ctrl-C is the server's, and kill()
                # can reach the whole group.
                start_new_session=True)
        except OSError as exc:
            raise SandboxError(f"the session's process could not be started: {exc}") from None
        worker = cls(proc, hold=hold)
        try:
            async with asyncio.timeout(ready_within):
                ready = await worker.call(dict(config))
            if ready.get("op") != "ready":
                raise wire.ProtocolError(f"unexpected first frame {ready!r:.200}")
        except (OSError, EOFError, wire.ProtocolError, TimeoutError) as exc:
            await worker.kill()
            detail = await worker.stderr_tail()
            raise SandboxError(f"the session's process did not start ({worker.describe_exit()}"
                               f"): {detail or repr(exc)}") from None
        except BaseException:
            worker.kill_now()
            raise
        return worker

    async def call(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one frame, read one back. EOFError if the process went away meanwhile."""
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        self._signal(signal.SIGCONT)
        try:
            stdin.write(wire.encode(message))
            await stdin.drain()
            header = await stdout.readexactly(wire.HEADER.size)
            reply = wire.decode(await stdout.readexactly(wire.frame_length(header)))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise EOFError("the session's process closed its pipes") from exc
        self._signal(signal.SIGSTOP)  # no CPU for threads a cell left running, until the next
        return reply

    def _signal(self, number: signal.Signals) -> None:
        if self.hold and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, number)

    def kill_now(self) -> None:
        """SIGKILL the process group; with --kill-child the namespace's init dies with
        `unshare`, and the kernel then kills every process of the PID namespace. Not
        `proc.kill()`: it polls, and reaping behind asyncio's child watcher loses the status."""
        if self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    async def kill(self) -> None:
        self.kill_now()
        with contextlib.suppress(TimeoutError):  # SIGKILL does not take this long
            await asyncio.wait_for(self.proc.wait(), 10)
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    async def stderr_tail(self) -> str:
        if self.proc.stderr is None:
            return ""
        try:
            data = await asyncio.wait_for(self.proc.stderr.read(), 5)
        except TimeoutError:
            return ""
        return data.decode(errors="replace").strip()[-2000:]

    def describe_exit(self) -> str:
        code = self.proc.returncode
        if code is None:
            return "still running"
        # init exits 128 + n when the worker was killed by signal n (as shells report it).
        number = -code if code < 0 else code - 128 if code > 128 else 0
        if number:
            try:
                return f"killed by {signal.Signals(number).name}"
            except ValueError:
                return f"killed by signal {number}"
        return f"exit status {code}"
