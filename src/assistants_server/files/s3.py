"""A `BlobStore` in an S3-compatible object store (AWS S3, MinIO, Ceph, ...), for processes on
hosts that share no disk: `ASSISTANTS_BLOB_URL=s3://BUCKET[/PREFIX]`, the endpoint in
`ASSISTANTS_S3_ENDPOINT_URL` for stores other than AWS, credentials and region from boto3's
usual places (the `AWS_*` variables, a profile, an instance role). The `s3` extra installs boto3.

boto3 is blocking: each call runs in a thread. An object is written whole by one PUT or, past
boto3's threshold, a multipart upload that S3 completes atomically, so a reader never sees half
a file, and an interrupted upload leaves no object (the bucket's lifecycle rule for incomplete
multipart uploads cleans their parts).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any
from urllib.parse import urlsplit

CHUNK = 1 << 20


class S3BlobStore:
    def __init__(self, url: str, endpoint_url: str | None = None) -> None:
        try:
            import boto3  # type: ignore[import-untyped, unused-ignore]
        except ImportError as exc:
            raise RuntimeError(
                f"ASSISTANTS_BLOB_URL={url} needs boto3: install the server with its 's3' extra "
                "(pip install 'assistants-server[s3]')") from exc
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(
                f"ASSISTANTS_BLOB_URL must look like s3://BUCKET[/PREFIX], not {url!r}")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/") + "/" if parts.path.strip("/") else ""
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, key: str) -> str:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"not a blob key: {key!r}")
        return self.prefix + key

    async def put(self, key: str, source: IO[bytes]) -> int:
        start = source.tell()
        size = source.seek(0, os.SEEK_END) - start
        source.seek(start)
        await asyncio.to_thread(self.client.upload_fileobj, source, self.bucket, self._key(key))
        return size

    async def open(self, key: str) -> AsyncIterator[bytes]:
        try:
            answer = await asyncio.to_thread(
                self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey as exc:
            raise FileNotFoundError(f"no object {self._key(key)} in bucket {self.bucket}") from exc
        return self._chunks(answer["Body"])

    @staticmethod
    async def _chunks(body: Any) -> AsyncIterator[bytes]:
        chunks: Iterator[bytes] = body.iter_chunks(CHUNK)
        try:
            while chunk := await asyncio.to_thread(next, chunks, b""):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self._key(key))

    async def check(self) -> None:
        """Raise, saying what to fix, unless the bucket answers."""
        try:
            await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)
        except Exception as exc:  # any failure: the store cannot be used
            raise RuntimeError(
                f"the file store s3://{self.bucket} does not answer ({exc}): check "
                "ASSISTANTS_BLOB_URL, ASSISTANTS_S3_ENDPOINT_URL and the AWS_* credentials"
            ) from exc
