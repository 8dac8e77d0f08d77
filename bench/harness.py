"""What the benchmark scripts share: free ports, starting and stopping the server (or the fake
backend) as a subprocess, throwaway PostgreSQL schemas, and a description of the machine."""

from __future__ import annotations

import argparse
import asyncio
import json as jsonlib
import os
import platform
import socket
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
HEADERS = {"OpenAI-Beta": "assistants=v2", "Authorization": "Bearer bench"}


class BenchError(Exception):
    pass


def argument_parser(doc: str) -> argparse.ArgumentParser:
    """The parser every script starts from: its docstring's first paragraph, --database-url."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--database-url", help="e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test"
                   " (a throwaway schema is created and dropped); default: SQLite in a temp dir")
    return p


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def checked(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a 200, or BenchError saying what was answered instead."""
    if response.status_code != 200:
        raise BenchError(f"{response.request.method} {response.request.url.path}: "
                         f"HTTP {response.status_code} {response.text[:200]}")
    body: dict[str, Any] = response.json()
    return body


class LeanClient:
    """A load generator's HTTP/1.1 client: one kept-alive connection, one request at a time,
    responses parsed by httptools (the C parser uvicorn uses). It spends about a tenth of the
    CPU httpx does per request, so on a small machine the cores go to the server being
    measured rather than to the clients. Answers are httpx.Response objects."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.base_url = httpx.URL(base_url)
        host = f"{self.base_url.host}:{self.base_url.port}"
        self._head = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "host": host}.items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()

    async def get(self, path: str) -> httpx.Response:
        return await self.request("GET", path)

    async def post(self, path: str, json: Any = None) -> httpx.Response:
        return await self.request("POST", path, json)

    async def request(self, method: str, path: str, json: Any = None) -> httpx.Response:
        import httptools

        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.base_url.host, self.base_url.port)
        assert self._reader is not None
        body = b"" if json is None else jsonlib.dumps(json).encode()
        self._writer.write(f"{method} {path} HTTP/1.1\r\n{self._head}content-type: "
                           f"application/json\r\ncontent-length: {len(body)}\r\n\r\n"
                           .encode() + body)
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        while not answer.complete:
            data = await self._reader.read(65536)
            if not data:
                self._writer.close()
                self._writer = None
                raise httpx.RemoteProtocolError("the server closed the connection")
            parser.feed_data(data)
        return httpx.Response(parser.get_status_code(), headers=answer.headers,
                              content=b"".join(answer.body),
                              request=httpx.Request(method, self.base_url.join(path)))


class _Answer:
    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], env: dict[str, str], log: Path, health: str) -> subprocess.Popen[bytes]:
    """Start `cmd` and wait until `health` answers (anything below 500)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{cmd[:3]} exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(health, timeout=1).status_code < 500:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop(proc)
    raise BenchError(f"{cmd[:3]} did not answer {health} in 60 s")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def drop_schema(url: str, schema: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


def cpu_seconds(pid: int, tree: bool = True) -> float:
    """CPU time (user + system) of process `pid` and (`tree`) every process below it, so far."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        times[child] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    found, grew = {pid}, tree
    while grew:
        below = {child for child, parent in parents.items() if parent in found} - found
        found |= below
        grew = bool(below)
    return sum(times.get(p, 0.0) for p in found)


def machine() -> dict[str, Any]:
    """The machine, and the commit of the code under `src/` (marked -dirty if edited)."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no", "src"],
                           capture_output=True, text=True).stdout
    return {"cpus": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
            "python": platform.python_version(),
            "commit": commit.strip() + ("-dirty" if dirty.strip() else "")}
