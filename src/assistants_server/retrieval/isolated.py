"""Parsing an upload in a process of its own, within limits, so that no file can take the server
down: a 1.25 MB .docx that expands to gigabytes, or a small PDF whose pages share one huge
stream, fails that one file `invalid_file` with the reason, and every other file goes on.

Before a byte is decompressed, an archive format (.docx, .pptx, .xlsx: zip files) is refused if
its members add up to more than `MAX_EXPANDED_BYTES`. Then `parsing.extract_text` runs in a
child forked from a server that has the parsers loaded (multiprocessing's forkserver), with an
address-space limit and a CPU limit, and is killed if it outlasts the wall clock; text over
`MAX_TEXT_BYTES` is refused too.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import resource
import signal
import zipfile
from multiprocessing.connection import Connection
from pathlib import PurePath
from typing import Any

from assistants_server.retrieval.parsing import UnparsableFile, extract_text

MAX_EXPANDED_BYTES = 512 * 2**20
MAX_TEXT_BYTES = 128 * 2**20
ARCHIVES = frozenset({".docx", ".pptx", ".xlsx"})
_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["assistants_server.retrieval.parsing"])


async def extract_isolated(data: bytes, filename: str, *, seconds: float,
                           memory_bytes: int) -> str:
    """`extract_text(data, filename)` in a child process within the limits given."""
    _check_archive(data, filename)
    receiver, sender = _context.Pipe(duplex=False)
    child = _context.Process(target=_parse, args=(sender, data, filename, seconds,
                                                  memory_bytes), daemon=True)
    child.start()
    sender.close()
    try:
        async with asyncio.timeout(seconds):
            answer = await asyncio.to_thread(_receive, receiver)
    except TimeoutError:
        raise UnparsableFile("invalid_file", f"parsing {filename} took longer than "
                             f"{seconds:g} s, so it was stopped") from None
    finally:
        if child.is_alive():
            child.kill()
        await asyncio.to_thread(child.join)
        receiver.close()
    if answer is None:
        raise UnparsableFile("invalid_file", _death(filename, child.exitcode, memory_bytes))
    kind, *rest = answer
    if kind == "error":
        raise UnparsableFile(rest[0], rest[1])
    text: str = rest[0]
    return text


def _check_archive(data: bytes, filename: str) -> None:
    if PurePath(filename).suffix.lower() not in ARCHIVES:
        return
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError):
        return  # the parser says what is wrong with it
    expanded = sum(member.file_size for member in members)
    if expanded > MAX_EXPANDED_BYTES:
        raise UnparsableFile(
            "invalid_file", f"{filename} expands to {expanded / 2**20:,.0f} MB when "
            f"decompressed, over the {MAX_EXPANDED_BYTES // 2**20} MB allowed")


def _receive(receiver: Connection) -> Any:
    try:
        return receiver.recv()
    except EOFError:  # the child died without answering
        return None


def _death(filename: str, exitcode: int | None, memory_bytes: int) -> str:
    if exitcode == -signal.SIGXCPU:
        return f"parsing {filename} used too much CPU time, so it was stopped"
    return (f"parsing {filename} failed (it may need more than {memory_bytes // 2**20} MB of "
            "memory)")


def _parse(sender: Connection, data: bytes, filename: str, seconds: float,
           memory_bytes: int) -> None:  # pragma: no cover - runs in the child
    cpu = max(1, int(seconds))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:
        text = extract_text(data, filename)
        if len(text) > MAX_TEXT_BYTES:
            raise UnparsableFile("invalid_file", f"{filename} holds more than "
                                 f"{MAX_TEXT_BYTES // 2**20} MB of text")
        sender.send(("ok", text))
    except UnparsableFile as exc:
        sender.send(("error", exc.code, exc.message))
    except MemoryError:
        sender.send(("error", "invalid_file", f"parsing {filename} needed more than "
                     f"{memory_bytes // 2**20} MB of memory, so it was stopped"))
    except Exception as exc:  # a parser's own failure on a file it cannot read
        sender.send(("error", "invalid_file", f"{filename} could not be parsed "
                     f"({type(exc).__name__})"))
    finally:
        sender.close()
