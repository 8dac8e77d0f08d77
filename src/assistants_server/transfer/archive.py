"""A bundle on disk, as a directory or as one tar archive (gzipped or not), written and read as
a stream of members in one order: `manifest.json`, then each kind's records
(`records/<kind>.jsonl`), the files' bytes (`files/<file id>`) just before the files' records.
Neither side holds more than a batch of records or a chunk of bytes in memory.

Both are written under `<name>.partial` and renamed when complete, so a bundle that exists is
whole; the directory's manifest is its last member written too.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import itertools
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from assistants_server.files.blobs import BlobStore
from assistants_server.transfer.kinds import KINDS

MANIFEST = "manifest.json"
BATCH = 500


class BundleError(Exception):
    """What is wrong with a bundle, or with where one was to be written."""


def is_archive(path: Path) -> bool:
    return path.name.endswith((".tar", ".tar.gz", ".tgz"))


def partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


@dataclass
class Member:
    """What a reader yields: the manifest, a file's bytes, or one kind's records."""

    kind: str  # "manifest", "blob" or a record kind's name
    name: str = ""  # a blob's file id
    source: IO[bytes] | None = None
    manifest: dict[str, Any] | None = None

    async def batches(self) -> AsyncIterator[tuple[int, list[dict[str, Any]]]]:
        """The records, a batch at a time, each batch with the line number of its first."""
        assert self.source is not None
        lines = iter(self.source)  # bytes lines: json reads UTF-8 bytes
        first = 1
        while batch := await asyncio.to_thread(lambda: list(itertools.islice(lines, BATCH))):
            records = []
            for number, line in enumerate(batch, first):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise BundleError(f"records/{self.kind}.jsonl line {number} is not JSON: "
                                      f"{exc}") from exc
            yield first, records
            first += len(batch)


class BundleWriter:
    """Collects each kind's records in a file (the bundle's own, or a temporary one for an
    archive), then writes the whole bundle with `finish`."""

    def __init__(self, path: Path) -> None:
        if path.exists():
            raise BundleError(f"{path} already exists: export into a new path.")
        if not path.parent.is_dir():
            raise BundleError(f"{path.parent} is not a directory: make it first.")
        self.path, self.work = path, partial(path)
        if self.work.is_dir():  # what an interrupted export left
            shutil.rmtree(self.work)
        self.work.unlink(missing_ok=True)
        self.archive = is_archive(path)
        # A bundle holds everything the server does: readable by this user only, as the data
        # directory is (mkdtemp's mode is 0700 too).
        if self.archive:
            self.spool = Path(tempfile.mkdtemp(prefix=".export-", dir=path.parent))
            os.close(os.open(self.work, os.O_CREAT | os.O_WRONLY, 0o600))
        else:
            self.spool = self.work
            self.work.mkdir(mode=0o700)
        (self.spool / "records").mkdir()

    def abandon(self) -> None:
        """Remove what an export that failed wrote."""
        for path in {self.work, self.spool}:
            if path.is_dir():
                shutil.rmtree(path)
            path.unlink(missing_ok=True)

    def records(self, kind: str) -> IO[str]:
        return (self.spool / "records" / f"{kind}.jsonl").open("w", encoding="utf-8")

    def _file_records(self) -> Iterator[dict[str, Any]]:
        with (self.spool / "records" / "files.jsonl").open(encoding="utf-8") as lines:
            yield from map(json.loads, lines)

    async def finish(self, manifest: dict[str, Any], blobs: BlobStore) -> list[str]:
        """Write the files' bytes and the manifest, and put the bundle in place; the ids of the
        files whose bytes the blob store no longer had."""
        loop = asyncio.get_running_loop()
        try:
            if self.archive:
                missing = await asyncio.to_thread(self._write_archive, manifest, blobs, loop)
            else:
                missing = await self._write_blobs(blobs)
                (self.work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            self.work.rename(self.path)
        finally:
            if self.archive:
                shutil.rmtree(self.spool, ignore_errors=True)
        return missing

    async def _write_blobs(self, blobs: BlobStore) -> list[str]:
        (self.work / "files").mkdir()
        missing = []
        for record in self._file_records():
            try:
                chunks = await blobs.open(record["id"])
            except FileNotFoundError:
                missing.append(record["id"])
                continue
            with (self.work / "files" / record["id"]).open("wb") as target:
                async for chunk in chunks:
                    await asyncio.to_thread(target.write, chunk)
        return missing

    def _write_archive(self, manifest: dict[str, Any], blobs: BlobStore,
                       loop: asyncio.AbstractEventLoop) -> list[str]:
        missing: list[str] = []
        with contextlib.ExitStack() as stack:
            out: Any = stack.enter_context(self.work.open("wb"))
            if not self.path.name.endswith(".tar"):
                out = stack.enter_context(gzip.GzipFile(fileobj=out, mode="wb"))
            tar = stack.enter_context(tarfile.open(fileobj=out, mode="w|",
                                                   format=tarfile.PAX_FORMAT))
            data = json.dumps(manifest, indent=2).encode() + b"\n"
            tar.addfile(_info(MANIFEST, len(data)), io.BytesIO(data))
            for kind in KINDS:
                if kind.name == "files":
                    missing = self._archive_blobs(tar, blobs, loop)
                records = self.spool / "records" / f"{kind.name}.jsonl"
                if records.exists():
                    tar.add(records, arcname=f"records/{kind.name}.jsonl")
        return missing

    def _archive_blobs(self, tar: tarfile.TarFile, blobs: BlobStore,
                       loop: asyncio.AbstractEventLoop) -> list[str]:
        missing = []
        for record in self._file_records():
            try:
                chunks = asyncio.run_coroutine_threadsafe(blobs.open(record["id"]), loop).result()
            except FileNotFoundError:
                missing.append(record["id"])
                continue
            reader = _ChunkReader(chunks, loop)
            try:
                tar.addfile(_info(f"files/{record['id']}", record["bytes"]), reader)
                if reader.read(1):
                    raise OSError("there are more")
            except OSError as exc:
                raise BundleError(f"the stored bytes of file {record['id']} are not the "
                                  f"{record['bytes']} its record says ({exc})") from exc
        return missing


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode = size, 0o600
    return info


class _ChunkReader(io.RawIOBase):
    """A blocking reader, for a thread, of an async iterator of chunks on the event loop."""

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self.chunks, self.loop, self.buffer = chunks, loop, b""

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes:
        return await anext(self.chunks, b"")

    def readinto(self, target: Any) -> int:
        if not self.buffer:
            self.buffer = asyncio.run_coroutine_threadsafe(self._next(), self.loop).result()
        size = min(len(target), len(self.buffer))
        target[:size], self.buffer = self.buffer[:size], self.buffer[size:]
        return size


async def read_bundle(path: Path) -> AsyncIterator[Member]:
    """The members of the bundle at `path`, in order; the manifest first."""
    if not await asyncio.to_thread(path.exists):
        raise BundleError(f"{path} does not exist.")
    archive = await asyncio.to_thread(path.is_file)
    members = _read_archive(path) if archive else _read_directory(path)
    async for member in members:
        yield member


async def _read_directory(path: Path) -> AsyncIterator[Member]:
    if not (path / MANIFEST).is_file():
        raise BundleError(f"{path} has no {MANIFEST}: not a bundle, or its export did not "
                          "finish.")
    yield Member("manifest", manifest=json.loads((path / MANIFEST).read_text()))
    for kind in KINDS:
        records = path / "records" / f"{kind.name}.jsonl"
        if kind.name == "files" and records.exists():
            with records.open(encoding="utf-8") as lines:
                for file_id in (json.loads(line)["id"] for line in lines):
                    blob = path / "files" / file_id
                    if blob.is_file():
                        with blob.open("rb") as source:
                            yield Member("blob", file_id, source)
        if records.exists():
            with records.open("rb") as source:
                yield Member(kind.name, source=source)


async def _read_archive(path: Path) -> AsyncIterator[Member]:
    try:
        tar = await asyncio.to_thread(tarfile.open, str(path), mode="r|*")
    except tarfile.TarError as exc:
        raise BundleError(f"{path} is not a tar archive: {exc}") from exc
    with tar:
        first = True
        while (info := await asyncio.to_thread(tar.next)) is not None:
            source = tar.extractfile(info)
            if first and (info.name != MANIFEST or source is None):
                raise BundleError(f"{path} does not start with {MANIFEST}: not a bundle.")
            if source is None:
                continue
            if first:
                first = False
                yield Member("manifest", manifest=json.loads(source.read()))
            elif info.name.startswith("files/"):
                yield Member("blob", info.name.removeprefix("files/"), source)
            elif info.name.startswith("records/") and info.name.endswith(".jsonl"):
                yield Member(info.name.removeprefix("records/").removesuffix(".jsonl"),
                             source=source)

