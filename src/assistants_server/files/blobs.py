"""The `BlobStore`: where uploaded files' bytes live, apart from the database.

`blob_store(settings)` is the store a server keeps its files in: an S3-compatible bucket
(`files/s3.py`) when `ASSISTANTS_BLOB_URL` names one, else the local store, which keeps one
file per key under a directory (the data directory's `files/`). A local write goes to a
temporary name first and is renamed into place, so a reader never sees half a file and a crash
leaves at most a stray temporary file.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assistants_server.config import Settings

CHUNK = 1 << 20
TEMPORARY = ".upload-"  # the name of a file being written, before its rename


class BlobStore(Protocol):
    async def put(self, key: str, source: IO[bytes]) -> int:
        """Store what `source` holds (read to its end); returns the number of bytes."""
        ...

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes, in chunks; raises FileNotFoundError at once (before any chunk)
        when `key` is not stored."""
        ...

    async def delete(self, key: str) -> None:
        """Forget `key`; nothing happens when it is not stored."""
        ...


def blob_store(settings: Settings) -> BlobStore:
    """Where a server with these settings keeps its files' bytes."""
    if settings.blob_url:
        from assistants_server.files.s3 import S3BlobStore

        return S3BlobStore(settings.blob_url, settings.s3_endpoint_url)
    return LocalBlobStore.of(settings)


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def of(cls, settings: Settings) -> LocalBlobStore:
        """The store a server with these settings keeps its files in: `<data dir>/files`."""
        return cls(settings.data_dir / "files")

    def _path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"not a blob key: {key!r}")
        return self.root / key

    async def put(self, key: str, source: IO[bytes]) -> int:
        return await asyncio.to_thread(self._put, key, source)

    def _put(self, key: str, source: IO[bytes]) -> int:
        """Durable before the record that names it commits: the bytes are synced, then the
        rename, then the directory that holds it. Readable by this server's user only."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=TEMPORARY)  # mode 0600
        try:
            with os.fdopen(handle, "wb") as target:
                shutil.copyfileobj(source, target, CHUNK)
                size = target.tell()
                target.flush()
                os.fsync(target.fileno())
            os.replace(temporary, self._path(key))
            directory = os.open(self.root, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return size

    async def sweep_temporary(self, older_than: float = 3600.0) -> int:
        """Remove what uploads interrupted by a crash left (a live upload of another process
        sharing the directory is younger); how many were removed."""
        return await asyncio.to_thread(self._sweep_temporary, older_than)

    def _sweep_temporary(self, older_than: float) -> int:
        removed = 0
        cutoff = time.time() - older_than
        for path in self.root.glob(TEMPORARY + "*") if self.root.is_dir() else ():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    async def open(self, key: str) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self._path(key).open, "rb")
        return self._chunks(handle)

    @staticmethod
    async def _chunks(handle: IO[bytes]) -> AsyncIterator[bytes]:
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)
