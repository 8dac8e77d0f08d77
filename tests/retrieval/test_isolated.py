"""Parser bombs fail their own file, not the server: an archive that expands past the limit is
refused before a byte is decompressed, a parse over its memory or time is stopped, and the
reason is the file's last_error."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile

import httpx
import pytest

from assistants_server.retrieval.isolated import MAX_EXPANDED_BYTES, extract_isolated
from assistants_server.retrieval.parsing import UnparsableFile

LIMITS = {"seconds": 20.0, "memory_bytes": 512 * 2**20}


def _docx_bomb(expanded: int) -> bytes:
    """A .docx whose document part is `expanded` bytes of one repeated character."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            block = b"a" * 2**20
            for _ in range(expanded // len(block)):
                part.write(block)
    return buffer.getvalue()


async def test_an_archive_that_expands_too_far_is_refused_unopened() -> None:
    bomb = _docx_bomb(MAX_EXPANDED_BYTES + 2**20)
    assert len(bomb) < 2 * 2**20  # a small upload
    started = time.monotonic()
    with pytest.raises(UnparsableFile) as refused:
        await extract_isolated(bomb, "report.docx", **LIMITS)
    assert refused.value.code == "invalid_file"
    assert "when decompressed" in refused.value.message and "report.docx" in refused.value.message
    assert time.monotonic() - started < 2


async def test_a_parse_over_its_memory_is_stopped_and_says_so() -> None:
    bomb = _docx_bomb(200 * 2**20)  # under the archive bound, over 64 MB once parsed
    with pytest.raises(UnparsableFile) as stopped:
        await extract_isolated(bomb, "big.docx", seconds=20, memory_bytes=256 * 2**20)
    assert stopped.value.code == "invalid_file"
    assert "big.docx" in stopped.value.message


async def test_a_parse_over_its_time_is_stopped_and_says_so() -> None:
    html = ("<div>" * 20_000 + "word " * 200_000 + "</div>" * 20_000).encode()
    with pytest.raises(UnparsableFile) as stopped:
        await extract_isolated(html, "slow.html", seconds=0.05, memory_bytes=512 * 2**20)
    assert "took longer than 0.05 s" in stopped.value.message


async def test_an_ordinary_file_parses_as_before() -> None:
    text = await extract_isolated(b"Refunds within 30 days.", "policy.txt", **LIMITS)
    assert text == "Refunds within 30 days."


async def test_a_bomb_in_a_vector_store_fails_that_file_only(
    client: httpx.AsyncClient,
) -> None:
    bomb = (await client.post("/v1/files", data={"purpose": "assistants"}, files={
        "file": ("bomb.docx", _docx_bomb(MAX_EXPANDED_BYTES + 2**20))})).json()
    fine = (await client.post("/v1/files", data={"purpose": "assistants"}, files={
        "file": ("fine.txt", b"Refunds within 30 days.")})).json()
    store = (await client.post("/v1/vector_stores", json={
        "file_ids": [bomb["id"], fine["id"]]})).json()
    for _ in range(200):
        files = (await client.get(f"/v1/vector_stores/{store['id']}/files")).json()["data"]
        if all(f["status"] != "in_progress" for f in files):
            break
        await asyncio.sleep(0.05)
    status = {f["id"]: (f["status"], f["last_error"]) for f in files}
    assert status[fine["id"]] == ("completed", None)
    assert status[bomb["id"]][0] == "failed"
    assert status[bomb["id"]][1]["code"] == "invalid_file"
    assert "when decompressed" in status[bomb["id"]][1]["message"]
