"""Vector store rules that need the ingestion worker held still: batch cancel, counts while
files wait, stores made from `tool_resources.file_search.vector_stores`, and refusals."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"executor_enabled": False}  # no worker: attached files stay in_progress


async def upload(client: httpx.AsyncClient, name: str, data: bytes = b"some text") -> str:
    response = await client.post("/v1/files", data={"purpose": "assistants"},
                                 files={"file": (name, data)})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def test_cancelling_a_batch_cancels_the_files_not_yet_indexed(
    client: httpx.AsyncClient,
) -> None:
    store = (await client.post("/v1/vector_stores", json={"name": "s"})).json()
    file_ids = [await upload(client, f"f{i}.txt") for i in range(3)]
    batch = (await client.post(f"/v1/vector_stores/{store['id']}/file_batches",
                               json={"file_ids": file_ids})).json()
    assert batch["status"] == "in_progress"
    assert batch["file_counts"] == {"in_progress": 3, "completed": 0, "failed": 0,
                                    "cancelled": 0, "total": 3}
    waiting = (await client.get(f"/v1/vector_stores/{store['id']}")).json()
    assert waiting["status"] == "in_progress" and waiting["file_counts"]["in_progress"] == 3

    cancelled = (await client.post(
        f"/v1/vector_stores/{store['id']}/file_batches/{batch['id']}/cancel")).json()
    assert cancelled["status"] == "cancelled" and cancelled["file_counts"]["cancelled"] == 3
    files = (await client.get(f"/v1/vector_stores/{store['id']}/file_batches/{batch['id']}"
                              "/files", params={"filter": "cancelled"})).json()["data"]
    assert sorted(f["id"] for f in files) == sorted(file_ids)
    after = (await client.get(f"/v1/vector_stores/{store['id']}")).json()
    assert after["status"] == "completed" and after["file_counts"]["cancelled"] == 3


async def test_inline_vector_stores_are_made_for_assistants_and_threads(
    client: httpx.AsyncClient,
) -> None:
    file_id = await upload(client, "notes.md")
    assistant = (await client.post("/v1/assistants", json={
        "model": "gpt-4o", "tools": [{"type": "file_search"}],
        "tool_resources": {"file_search": {"vector_stores": [
            {"file_ids": [file_id], "metadata": {"made": "inline"}}]}}})).json()
    (store_id,) = assistant["tool_resources"]["file_search"]["vector_store_ids"]
    store = (await client.get(f"/v1/vector_stores/{store_id}")).json()
    assert store["metadata"] == {"made": "inline"} and store["file_counts"]["total"] == 1
    thread = (await client.post("/v1/threads", json={"tool_resources": {"file_search": {
        "vector_stores": [{"file_ids": [file_id]}]}}})).json()
    assert thread["tool_resources"]["file_search"]["vector_store_ids"][0].startswith("vs_")


@pytest.mark.parametrize(("body", "param"), [
    ({"file_ids": ["file-missing"]}, "file_ids"),
    ({"expires_after": {"anchor": "created_at", "days": 1}}, "expires_after.anchor"),
    ({"expires_after": {"anchor": "last_active_at", "days": 400}}, "expires_after.days"),
    ({"chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 50,
                                                          "chunk_overlap_tokens": 0}}},
     "chunking_strategy"),
    ({"chunking_strategy": {"type": "semantic"}}, "chunking_strategy"),
])
async def test_bad_store_requests_name_the_parameter(
    client: httpx.AsyncClient, body: dict[str, Any], param: str
) -> None:
    response = await client.post("/v1/vector_stores", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_both_vector_store_ids_and_vector_stores_are_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/threads", json={"tool_resources": {"file_search": {
        "vector_store_ids": ["vs_x"], "vector_stores": [{"file_ids": []}]}}})
    assert response.status_code == 400
    assert "either" in response.json()["error"]["message"]


async def test_an_expired_file_leaves_its_vector_stores_when_purged(
    client: httpx.AsyncClient, app: Any
) -> None:
    from sqlalchemy import update

    from assistants_server.db.models import FileRow
    from assistants_server.files.service import purge_expired
    from assistants_server.kit.uow import commit
    from assistants_server.vector_stores.service import forget_file

    file_id = await upload(client, "old.txt")
    store = (await client.post("/v1/vector_stores", json={"file_ids": [file_id]})).json()
    async with app.state.sessionmaker() as session:
        await session.execute(update(FileRow).where(FileRow.id == file_id).values(
            expires_at=int(time.time()) - 1))
        purged = await purge_expired(
            session, app.state.blobs, int(time.time()),
            lambda s, f: forget_file(s, app.state.search_index, f))
        await commit(session)  # the caller owns the transaction; the bytes go after it
    assert purged == 1
    assert not (app.state.settings.data_dir / "files" / file_id).exists()
    shown = (await client.get(f"/v1/vector_stores/{store['id']}")).json()
    assert shown["file_counts"]["total"] == 0


async def test_unknown_ids_are_not_found(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/vector_stores/vs_nope")).status_code == 404
    store = (await client.post("/v1/vector_stores", json={})).json()
    missing = await client.get(f"/v1/vector_stores/{store['id']}/files/file-nope")
    assert missing.status_code == 404
    assert (await client.get(f"/v1/vector_stores/{store['id']}/file_batches/vsfb_x")
            ).status_code == 404
    bad = await client.get(f"/v1/vector_stores/{store['id']}/files", params={"filter": "x"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "filter"


async def test_inline_store_errors_name_their_place_in_the_request(
    client: httpx.AsyncClient,
) -> None:
    inline = "tool_resources.file_search.vector_stores[0]."
    bad_chunks = {"type": "static", "static": {"max_chunk_size_tokens": 50,
                                               "chunk_overlap_tokens": 0}}
    for spec, param in (({"chunking_strategy": bad_chunks}, inline + "chunking_strategy"),
                        ({"file_ids": ["file-missing"]}, inline + "file_ids")):
        response = await client.post("/v1/threads", json={
            "tool_resources": {"file_search": {"vector_stores": [spec]}}})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param
