"""What the hosted reference left open, decided with the evidence in the code's comments:
metadata on modify merges (kit/metadata.py), `additional_instructions` joins the instructions
with one space (runs/service.py), and a store file's `usage_bytes` is never below its size
(vector_stores/ingest.py `usage_bytes`)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fpdf import FPDF


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"backend_base_url": "http://127.0.0.1:9/v1"}  # runs fail at once: never asked


async def objects(client: httpx.AsyncClient) -> dict[str, str]:
    """Paths of one object of each kind with metadata, each made with two pairs."""
    held = {"metadata": {"keep": "1", "change": "old"}}
    assistant = (await client.post("/v1/assistants", json={"model": "m", **held})).json()
    thread = (await client.post("/v1/threads", json=held)).json()
    message = (await client.post(f"/v1/threads/{thread['id']}/messages", json={
        "role": "user", "content": "hi", **held})).json()
    run = (await client.post(f"/v1/threads/{thread['id']}/runs", json={
        "assistant_id": assistant["id"], **held})).json()
    store = (await client.post("/v1/vector_stores", json=held)).json()
    return {"assistant": f"/v1/assistants/{assistant['id']}",
            "thread": f"/v1/threads/{thread['id']}",
            "message": f"/v1/threads/{thread['id']}/messages/{message['id']}",
            "run": f"/v1/threads/{thread['id']}/runs/{run['id']}",
            "vector store": f"/v1/vector_stores/{store['id']}"}


async def test_metadata_on_modify_adds_and_changes_pairs_and_keeps_the_others(
    client: httpx.AsyncClient,
) -> None:
    for kind, path in (await objects(client)).items():
        changed = await client.post(path, json={"metadata": {"change": "new", "add": "x"}})
        assert changed.json()["metadata"] == {"keep": "1", "change": "new", "add": "x"}, kind
        for nothing in ({}, None):
            same = await client.post(path, json={"metadata": nothing})
            assert same.json()["metadata"] == {"keep": "1", "change": "new", "add": "x"}, kind
        too_many = await client.post(path, json={"metadata": {f"k{n}": "v" for n in range(14)}})
        assert too_many.status_code == 400, kind
        error = too_many.json()["error"]
        assert (error["param"], error["code"]) == ("metadata", "object_above_max_properties")
        assert "would make 17; at most 16" in error["message"]
        assert (await client.get(path)).json()["metadata"] == {
            "keep": "1", "change": "new", "add": "x"}, kind


async def test_additional_instructions_follow_the_instructions_after_one_space(
    client: httpx.AsyncClient,
) -> None:
    assistant = (await client.post("/v1/assistants", json={
        "model": "m", "instructions": "Be brief."})).json()
    bare = (await client.post("/v1/assistants", json={"model": "m"})).json()
    thread = (await client.post("/v1/threads", json={})).json()
    for who, expected in ((assistant, "Be brief. Use French."), (bare, "Use French.")):
        run = (await client.post(f"/v1/threads/{thread['id']}/runs", json={
            "assistant_id": who["id"], "additional_instructions": "Use French."})).json()
        assert run["instructions"] == expected
        deadline = time.monotonic() + 10  # one active run per thread: let it end
        while (await client.get(f"/v1/threads/{thread['id']}/runs/{run['id']}")).json()[
                "status"] not in ("failed", "completed", "expired", "cancelled"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)


async def test_a_store_files_usage_is_never_below_its_size(
    client: httpx.AsyncClient, tmp_path: Any,
) -> None:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Refunds are paid within 30 days of a return.")
    pdf.output(str(tmp_path / "policy.pdf"))
    sizes = {}
    for name, data in (("policy.pdf", (tmp_path / "policy.pdf").read_bytes()),
                       ("notes.txt", b"The keeper logs the tide at dawn. " * 200)):
        file = (await client.post("/v1/files", data={"purpose": "assistants"},
                                  files={"file": (name, data)})).json()
        sizes[file["id"]] = len(data)
    store = (await client.post("/v1/vector_stores", json={"file_ids": list(sizes)})).json()
    deadline = time.monotonic() + 20
    while (body := (await client.get(f"/v1/vector_stores/{store['id']}")).json())[
            "status"] != "completed":
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)
    files = (await client.get(f"/v1/vector_stores/{store['id']}/files")).json()["data"]
    for file in files:  # the PDF's text is a few dozen bytes of its ~1 KB
        assert file["status"] == "completed"
        assert file["usage_bytes"] > sizes[file["id"]], file
    assert body["usage_bytes"] == sum(f["usage_bytes"] for f in files)
