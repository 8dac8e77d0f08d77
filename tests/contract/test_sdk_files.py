"""Files through the official SDK over a real socket: upload, list, retrieve, content, delete,
expiry, and the errors of a bad upload."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import LiveServer
from tests.contract.sdk_errors import server_message


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # No executor: its sweeper would purge expired files before the tests do.
    return {"max_upload_bytes": 4096, "executor_enabled": False}


def test_upload_retrieve_download_delete(sdk: Any, tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_bytes(b"# Notes\n\nThe answer is 42.\n")
    with path.open("rb") as handle:
        uploaded = sdk.files.create(file=handle, purpose="assistants")
    assert uploaded.id.startswith("file-") and uploaded.object == "file"
    assert (uploaded.filename, uploaded.bytes, uploaded.purpose) == (
        "notes.md", path.stat().st_size, "assistants")
    assert uploaded.status == "processed" and uploaded.expires_at is None
    assert sdk.files.retrieve(uploaded.id) == uploaded
    assert sdk.files.content(uploaded.id).content == path.read_bytes()
    deleted = sdk.files.delete(uploaded.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (uploaded.id, "file", True)
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.files.retrieve(uploaded.id)
    assert server_message(caught.value) == f"No such File object: {uploaded.id}"
    with pytest.raises(openai.NotFoundError):
        sdk.files.content(uploaded.id)


def test_list_filters_by_purpose_and_pages(sdk: Any) -> None:
    made = [sdk.files.create(file=(f"f{i}.txt", f"file {i}".encode(), "text/plain"),
                             purpose=purpose)
            for i, purpose in enumerate(["assistants", "vision", "assistants", "user_data"])]
    listed = [f.id for f in sdk.files.list()]
    assert listed == [f.id for f in reversed(made)]  # newest first, all in one page
    assert [f.id for f in sdk.files.list(purpose="assistants")] == [made[2].id, made[0].id]
    first = sdk.files.list(limit=1, order="asc")
    assert [f.id for f in first.data] == [made[0].id] and first.has_more
    paged = [f.id for f in sdk.files.list(limit=1, order="asc")]
    assert paged == [f.id for f in made]


def test_bad_uploads_are_refused_with_the_parameter(sdk: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.files.create(file=("a.txt", b"x", "text/plain"), purpose="wrong")  # type: ignore[arg-type]
    assert caught.value.body["param"] == "purpose"
    assert "assistants" in server_message(caught.value)
    with pytest.raises(openai.APIStatusError) as too_big:
        sdk.files.create(file=("big.bin", b"x" * 5000, "application/octet-stream"),
                         purpose="assistants")
    assert too_big.value.status_code == 413
    assert "ASSISTANTS_MAX_UPLOAD_BYTES" in server_message(too_big.value)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.files.retrieve("nope")
    assert caught.value.body["param"] == "file_id"


def test_missing_file_part_and_expiry(live_server: LiveServer) -> None:
    base = live_server.url + "/v1/files"
    missing = httpx.post(base, data={"purpose": "assistants"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "file"
    kept = httpx.post(base, data={"purpose": "assistants", "expires_after[anchor]": "created_at",
                                  "expires_after[seconds]": "3600"},
                      files={"file": ("a.txt", b"abc", "text/plain")}).json()
    assert kept["expires_at"] == kept["created_at"] + 3600
    short = httpx.post(base, data={"purpose": "assistants", "expires_after[anchor]": "created_at",
                                   "expires_after[seconds]": "10"},
                       files={"file": ("a.txt", b"abc", "text/plain")})
    assert short.status_code == 400
    assert short.json()["error"]["param"] == "expires_after.seconds"
    # No beta header needed for files, as on the hosted service.
    assert httpx.get(f"{base}/{kept['id']}").status_code == 200


async def test_expired_files_disappear_and_their_bytes_are_purged(client: httpx.AsyncClient,
                                                                 app: Any) -> None:
    from sqlalchemy import update

    from assistants_server.db.models import FileRow
    from assistants_server.files.service import purge_expired
    from assistants_server.kit.uow import commit

    made = (await client.post("/v1/files", data={"purpose": "assistants"},
                              files={"file": ("a.txt", b"abc", "text/plain")})).json()
    kept = (await client.post("/v1/files", data={"purpose": "assistants"},
                              files={"file": ("b.txt", b"def", "text/plain")})).json()
    async with app.state.sessionmaker() as session:
        await session.execute(update(FileRow).where(FileRow.id == made["id"]).values(
            expires_at=int(time.time()) - 1))
        await session.commit()
    assert (await client.get(f"/v1/files/{made['id']}")).status_code == 404
    assert [f["id"] for f in (await client.get("/v1/files")).json()["data"]] == [kept["id"]]
    blobs = app.state.blobs.root
    assert (blobs / made["id"]).exists()
    async with app.state.sessionmaker() as session:
        assert await purge_expired(session, app.state.blobs, int(time.time())) == 1
        await commit(session)  # the caller owns the transaction; the bytes go after it
    assert not (blobs / made["id"]).exists() and (blobs / kept["id"]).exists()


async def test_cursors_survive_expiry_and_purge(client: httpx.AsyncClient, app: Any) -> None:
    from sqlalchemy import update

    from assistants_server.db.models import FileRow
    from assistants_server.files.service import purge_expired
    from assistants_server.kit.uow import commit

    ids = [(await client.post("/v1/files", data={"purpose": "assistants"}, files={
        "file": (f"{i}.txt", b"x", "text/plain")})).json()["id"] for i in range(3)]
    async with app.state.sessionmaker() as session:
        await session.execute(update(FileRow).where(FileRow.id == ids[1]).values(
            expires_at=int(time.time()) - 1))
        await session.commit()
    page = await client.get("/v1/files", params={"order": "asc", "after": ids[1]})
    assert [f["id"] for f in page.json()["data"]] == [ids[2]]
    async with app.state.sessionmaker() as session:
        await purge_expired(session, app.state.blobs, int(time.time()))
        await commit(session)
    page = await client.get("/v1/files", params={"order": "asc", "after": ids[1]})
    assert [f["id"] for f in page.json()["data"]] == [ids[2]]


async def test_names_missing_bytes_and_limits(client: httpx.AsyncClient, app: Any) -> None:
    made = (await client.post("/v1/files", data={"purpose": "assistants"}, files={
        "file": ("../../etc/passwd", b"x", "text/plain")})).json()
    assert made["filename"] == "passwd"
    long_name = await client.post("/v1/files", data={"purpose": "assistants"}, files={
        "file": ("a" * 1100 + ".txt", b"x", "text/plain")})
    assert long_name.status_code == 400 and long_name.json()["error"]["param"] == "file"
    (app.state.blobs.root / made["id"]).unlink()
    missing = await client.get(f"/v1/files/{made['id']}/content")
    assert missing.status_code == 404
    assert "missing" in missing.json()["error"]["message"]
    huge = await client.post("/v1/files", content=b"x" * 10,
                             headers={"Content-Length": str(10**9),
                                      "Content-Type": "multipart/form-data; boundary=b"})
    assert huge.status_code == 413
    error = huge.json()["error"]
    assert (error["param"], error["code"]) == ("file", "file_too_large")
    assert "4096 bytes (ASSISTANTS_MAX_UPLOAD_BYTES)" in error["message"]
    half = await client.post("/v1/files", data={"purpose": "assistants",
                                                "expires_after[seconds]": "3600"},
                             files={"file": ("a.txt", b"x", "text/plain")})
    assert half.status_code == 400 and half.json()["error"]["param"] == "expires_after.anchor"
