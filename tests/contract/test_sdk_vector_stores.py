"""Vector stores through the official SDK over a real socket: create and poll, files, batches,
search, attribute filters, expiry, detaching and deleting files, and broken files.

The SDK of the tutorials (1.59.4) calls them `client.beta.vector_stores`, newer ones
`client.vector_stores`; the same tests run on both (tests/test_sdk_versions.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest
from sqlalchemy import update

from assistants_server.config import Settings
from assistants_server.db.engine import create_engine
from assistants_server.db.models import VectorStoreRow
from tests.contract.sdk_errors import server_message

REFUNDS = ("Refund policy. Items that arrive damaged can be returned within 30 days for a full "
           "refund. Keep the original packaging and the receipt.")
SHIPPING = ("Shipping times. Standard delivery takes five to seven business days; express "
            "delivery arrives within two days in most regions.")
PASSWORDS = ("Account help. To reset a forgotten password, open the sign-in page, choose "
             "'Forgot password' and follow the link we e-mail you.")


def stores(sdk: Any) -> Any:
    return sdk.vector_stores if hasattr(sdk, "vector_stores") else sdk.beta.vector_stores


def search(sdk: Any, store_id: str, **body: Any) -> list[dict[str, Any]]:
    """POST .../search through the SDK's client; 1.59.4 has no method for it."""
    page = sdk.post(f"/vector_stores/{store_id}/search", cast_to=object, body=body)
    results: list[dict[str, Any]] = page["data"]
    return results


def content(sdk: Any, store_id: str, file_id: str) -> list[dict[str, Any]]:
    """GET .../files/{file_id}/content through the SDK's client (not in 1.59.4 either)."""
    page = sdk.get(f"/vector_stores/{store_id}/files/{file_id}/content", cast_to=object)
    parts: list[dict[str, Any]] = page["data"]
    return parts


def upload(sdk: Any, name: str, data: bytes) -> Any:
    return sdk.files.create(file=(name, data, "application/octet-stream"), purpose="assistants")


def wait_for(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_create_with_files_indexes_them_and_search_ranks_the_right_one(sdk: Any) -> None:
    files = [upload(sdk, "refunds.txt", REFUNDS.encode()),
             upload(sdk, "shipping.md", f"# Shipping\n\n{SHIPPING}".encode()),
             upload(sdk, "help.html", f"<html><body><p>{PASSWORDS}</p>"
                                      "<script>var x = 'refund';</script></body></html>".encode())]
    store = stores(sdk).create(name="Support FAQ", file_ids=[f.id for f in files],
                               metadata={"team": "support"}, extra_body={
                                   "description": "Answers for the support team"})
    assert store.object == "vector_store" and store.id.startswith("vs_")
    assert store.name == "Support FAQ" and store.metadata == {"team": "support"}
    assert store.file_counts.total == 3
    done = wait_for(lambda: (s := stores(sdk).retrieve(store.id)).status == "completed" and s)
    assert done.file_counts.completed == 3 and done.file_counts.in_progress == 0
    assert done.usage_bytes > len(REFUNDS)

    results = search(sdk, store.id, query="How long does express delivery take?")
    assert results[0]["file_id"] == files[1].id and results[0]["filename"] == "shipping.md"
    assert "two days" in results[0]["content"][0]["text"] and 0 < results[0]["score"] <= 1
    top = search(sdk, store.id, query="I forgot my password", max_num_results=1)
    assert [r["file_id"] for r in top] == [files[2].id]
    assert "var x" not in top[0]["content"][0]["text"]  # scripts are not text

    listed = stores(sdk).files.list(store.id)
    assert sorted(f.id for f in listed) == sorted(f.id for f in files)
    assert all(f.status == "completed" and f.vector_store_id == store.id for f in listed)
    chunking = listed.data[0].chunking_strategy
    assert chunking.type == "static" and chunking.static.max_chunk_size_tokens == 800
    assert chunking.static.chunk_overlap_tokens == 400


def test_create_and_poll_upload_and_poll_and_file_content(sdk: Any) -> None:
    store = stores(sdk).create(name="docs")
    added = stores(sdk).files.upload_and_poll(
        vector_store_id=store.id, file=("refunds.txt", REFUNDS.encode()))
    assert added.status == "completed" and added.last_error is None
    other = upload(sdk, "shipping.txt", SHIPPING.encode())
    polled = stores(sdk).files.create_and_poll(vector_store_id=store.id, file_id=other.id)
    assert polled.status == "completed" and polled.id == other.id
    assert "".join(part["text"] for part in content(sdk, store.id, other.id)) == SHIPPING
    assert stores(sdk).retrieve(store.id).file_counts.completed == 2


def test_file_batches_poll_to_completion_and_list_their_files(sdk: Any) -> None:
    store = stores(sdk).create(name="batch")
    files = [upload(sdk, f"doc{i}.txt", f"Document {i}: {text}".encode())
             for i, text in enumerate([REFUNDS, SHIPPING, PASSWORDS])]
    batch = stores(sdk).file_batches.create_and_poll(
        vector_store_id=store.id, file_ids=[f.id for f in files])
    assert batch.object == "vector_store.files_batch" and batch.id.startswith("vsfb_")
    assert batch.status == "completed" and batch.file_counts.completed == 3
    listed = stores(sdk).file_batches.list_files(batch_id=batch.id, vector_store_id=store.id)
    assert sorted(f.id for f in listed) == sorted(f.id for f in files)
    uploaded = stores(sdk).file_batches.upload_and_poll(
        store.id, files=[("extra.txt", b"Warranty: two years on all appliances.")])
    assert uploaded.status == "completed" and uploaded.file_counts.total == 1


def test_broken_and_unsupported_files_fail_with_the_reason(sdk: Any) -> None:
    store = stores(sdk).create(name="bad")
    binary = upload(sdk, "data.txt", b"\x00\x01\x02binary\x00")
    program = upload(sdk, "tool.exe", b"MZ\x90\x00")
    pdf = upload(sdk, "broken.pdf", b"%PDF-1.4 this is not really a pdf")
    for file in (binary, program, pdf):
        stores(sdk).files.create(vector_store_id=store.id, file_id=file.id)
    done = wait_for(lambda: (s := stores(sdk).retrieve(store.id)).status == "completed" and s)
    assert done.file_counts.failed == 3 and done.file_counts.completed == 0
    failed = {f.id: f for f in stores(sdk).files.list(store.id, filter="failed")}
    assert failed[program.id].last_error.code == "unsupported_file"
    assert ".exe" in failed[program.id].last_error.message
    assert failed[binary.id].last_error.code == "invalid_file"
    assert failed[pdf.id].last_error.code == "invalid_file"
    assert list(stores(sdk).files.list(store.id, filter="completed")) == []


def test_detaching_keeps_the_file_and_deleting_the_file_leaves_every_store(sdk: Any) -> None:
    kept, doomed = upload(sdk, "a.txt", REFUNDS.encode()), upload(sdk, "b.txt", SHIPPING.encode())
    first = stores(sdk).create_and_poll(name="one", file_ids=[kept.id, doomed.id]) if hasattr(
        stores(sdk), "create_and_poll") else stores(sdk).create(name="one",
                                                                file_ids=[kept.id, doomed.id])
    second = stores(sdk).create(name="two", file_ids=[doomed.id])
    for store in (first, second):
        wait_for(lambda s=store: stores(sdk).retrieve(s.id).status == "completed")
    detached = stores(sdk).files.delete(file_id=kept.id, vector_store_id=first.id)
    assert (detached.id, detached.object, detached.deleted) == (
        kept.id, "vector_store.file.deleted", True)
    assert sdk.files.retrieve(kept.id).id == kept.id  # the file itself stays
    assert not search(sdk, first.id, query="refund damaged items")
    with pytest.raises(openai.NotFoundError):
        stores(sdk).files.retrieve(file_id=kept.id, vector_store_id=first.id)

    assert search(sdk, second.id, query="express delivery")
    sdk.files.delete(doomed.id)
    for store in (first, second):
        assert stores(sdk).retrieve(store.id).file_counts.total == 0
        assert not search(sdk, store.id, query="express delivery")


def test_attribute_filters_narrow_the_search(sdk: Any) -> None:
    store = stores(sdk).create(name="filtered")
    old = upload(sdk, "2023.txt", f"2023 edition. {REFUNDS}".encode())
    new = upload(sdk, "2025.txt", f"2025 edition. {REFUNDS}".encode())
    for file, year in ((old, 2023), (new, 2025)):
        stores(sdk).files.create(vector_store_id=store.id, file_id=file.id,
                                 extra_body={"attributes": {"year": year, "region": "eu"}})
        stores(sdk).files.poll(file.id, vector_store_id=store.id)
    query = "refund for damaged items"
    recent = search(sdk, store.id, query=query,
                    filters={"type": "gte", "key": "year", "value": 2024})
    assert [r["file_id"] for r in recent] == [new.id]
    assert recent[0]["attributes"] == {"year": 2025, "region": "eu"}
    both = {"type": "and", "filters": [{"type": "eq", "key": "region", "value": "eu"},
                                       {"type": "in", "key": "year", "value": [2023, 2025]}]}
    assert {r["file_id"] for r in search(sdk, store.id, query=query, filters=both)} == {
        old.id, new.id}
    with pytest.raises(openai.BadRequestError) as caught:
        search(sdk, store.id, query=query, filters={"type": "like", "key": "y", "value": 1})
    assert caught.value.body["param"] == "filters.type"


def test_chunking_strategy_is_validated_and_stored(sdk: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        stores(sdk).create(chunking_strategy={"type": "static", "static": {
            "max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150}})
    assert caught.value.body["param"] == "chunking_strategy"
    assert "chunk_overlap_tokens" in server_message(caught.value)
    store = stores(sdk).create()
    file = upload(sdk, "small.txt", (REFUNDS + " ") * 40)
    added = stores(sdk).files.create_and_poll(
        vector_store_id=store.id, file_id=file.id,
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 100,
                                                        "chunk_overlap_tokens": 20}})
    assert added.chunking_strategy.static.max_chunk_size_tokens == 100
    assert len(content(sdk, store.id, file.id)) > 5


def test_modify_list_delete_and_expiry(sdk: Any, settings: Settings) -> None:
    first = stores(sdk).create(name="first")
    second = stores(sdk).create(name="second",
                                expires_after={"anchor": "last_active_at", "days": 1})
    assert second.expires_at == second.last_active_at + 86_400
    assert [s.id for s in stores(sdk).list()] == [second.id, first.id]
    renamed = stores(sdk).update(first.id, name="renamed", metadata={"k": "v"})
    assert renamed.name == "renamed" and renamed.metadata == {"k": "v"}

    asyncio.run(_age(settings, second.id))
    expired = stores(sdk).retrieve(second.id)
    assert expired.status == "expired"
    with pytest.raises(openai.BadRequestError) as caught:
        search(sdk, second.id, query="anything")
    assert "expired" in server_message(caught.value)

    deleted = stores(sdk).delete(first.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (
        first.id, "vector_store.deleted", True)
    with pytest.raises(openai.NotFoundError):
        stores(sdk).retrieve(first.id)
    assert [s.id for s in stores(sdk).list()] == [second.id]


async def _age(settings: Settings, store_id: str) -> None:
    """Move a store's idle clock two days back, as if nobody had used it since."""
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            past = int(time.time()) - 2 * 86_400
            await connection.execute(update(VectorStoreRow).where(VectorStoreRow.id == store_id)
                                     .values(last_active_at=past, expires_at=past + 86_400))
    finally:
        await engine.dispose()


def test_cookbook_assistant_shows_its_tools_and_stores_as_the_service_did(sdk: Any) -> None:
    tutor = sdk.beta.assistants.create(model="gpt-4o", name="Math Tutor")
    tutor = sdk.beta.assistants.update(tutor.id, tools=[{"type": "code_interpreter"}])
    assert tutor.tool_resources.code_interpreter.file_ids == []
    store = stores(sdk).create(name="paper")
    tutor = sdk.beta.assistants.update(
        tutor.id, tools=[{"type": "code_interpreter"}, {"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    search = tutor.tools[1].file_search
    assert search.max_num_results is None
    assert (search.ranking_options.ranker, search.ranking_options.score_threshold) == (
        "default_2024_08_21", 0.0)
    thread = sdk.beta.threads.create(
        tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    deleted = stores(sdk).delete(store.id)
    assert deleted.deleted and deleted.object == "vector_store.deleted"
    assert sdk.beta.assistants.retrieve(tutor.id).tool_resources.file_search.vector_store_ids \
        == []
    assert sdk.beta.threads.retrieve(thread.id).tool_resources.file_search.vector_store_ids \
        == []
