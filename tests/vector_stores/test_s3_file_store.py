"""Files' bytes in an S3-compatible object store (ASSISTANTS_BLOB_URL), against moto's S3 server
on loopback: two servers on one database that share no disk (each its own data directory), one
taking the upload and the other serving its content and indexing it for file_search; a delete
removes the object; a store that does not answer fails the start, saying what to check."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistants_server.app import create_app
from assistants_server.config import Settings
from tests.conftest import LiveServer, running

BUCKET = "assistants-files"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    endpoint = f"http://127.0.0.1:{port}"
    _client(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def _client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint)


@pytest.fixture
def settings_overrides(s3: str) -> dict[str, Any]:
    return {"blob_url": f"s3://{BUCKET}/server-1", "s3_endpoint_url": s3}


def _objects(endpoint: str) -> list[str]:
    listed = _client(endpoint).list_objects_v2(Bucket=BUCKET)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_two_servers_that_share_no_disk_share_the_files(
    sdk: Any, settings: Settings, s3: str, tmp_path: Path,
) -> None:
    content = b"Refunds: damaged items are refunded in full within 30 days.\n" * 50
    file = sdk.files.create(file=("policy.txt", content), purpose="assistants")
    assert _objects(s3) == [f"server-1/{file.id}"]
    assert not (settings.data_dir / "files").exists() or not any(
        (settings.data_dir / "files").iterdir())

    elsewhere = settings.model_copy(update={"data_dir": tmp_path / "other-host"})
    import openai

    with LiveServer(create_app(elsewhere)) as other:
        remote = openai.OpenAI(base_url=other.url + "/v1", api_key="sk-test", max_retries=0)
        assert remote.files.content(file.id).read() == content
        stores = getattr(remote, "vector_stores", None) or remote.beta.vector_stores
        store = stores.create(name="Policies")
        indexed = stores.files.create_and_poll(vector_store_id=store.id, file_id=file.id)
        assert indexed.status == "completed", indexed.last_error
        hits = stores.search(store.id, query="damaged items refund")
        assert hits.data[0].file_id == file.id

    assert sdk.files.delete(file.id).deleted
    assert _objects(s3) == []


async def test_a_store_that_does_not_answer_fails_the_start(settings: Settings) -> None:
    wrong = settings.model_copy(update={"blob_url": "s3://no-such-bucket"})
    with pytest.raises(RuntimeError, match="ASSISTANTS_BLOB_URL, ASSISTANTS_S3_ENDPOINT_URL"):
        async with running(wrong, {}):
            pass
