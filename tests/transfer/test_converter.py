"""The example converter: what a user saved from the hosted service with the SDK becomes a
bundle this server imports, and the API then answers with the saved objects."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from openai.types import FileObject
from openai.types.beta import Assistant, Thread
from openai.types.beta.threads import Message

from assistants_server.config import Settings
from assistants_server.transfer.importing import import_bundle
from tests.transfer.conftest import quiet, served

CONVERTER = Path(__file__).resolve().parents[2] / "examples" / "hosted_to_bundle.py"
CREATED = 1714000000


def hosted_objects() -> dict[str, Any]:
    """Objects as the hosted API answered them, dumped as the SDK dumps them."""
    assistant = Assistant.model_validate({
        "id": "asst_hosted1", "object": "assistant", "created_at": CREATED, "name": "Tutor",
        "description": None, "model": "gpt-4o", "instructions": "You are a math tutor.",
        "tools": [{"type": "code_interpreter"}, {"type": "file_search"}],
        "tool_resources": {"code_interpreter": {"file_ids": ["file-kept", "file-lost"]},
                           "file_search": {"vector_store_ids": ["vs_gone"]}},
        "metadata": {"course": "algebra"}, "temperature": 0.2, "top_p": 1.0,
        "response_format": "auto"})
    file = FileObject.model_validate({
        "id": "file-kept", "object": "file", "bytes": 8, "created_at": CREATED,
        "filename": "data.csv", "purpose": "assistants", "status": "processed"})
    thread = Thread.model_validate({"id": "thread_hosted1", "object": "thread",
                                    "created_at": CREATED + 10, "metadata": {"user": "ada"},
                                    "tool_resources": {}})
    messages = [Message.model_validate({
        "id": f"msg_hosted{n}", "object": "thread.message", "created_at": CREATED + 10 + n // 2,
        "thread_id": thread.id, "status": "completed", "role": role,
        "content": [{"type": "text", "text": {"value": f"turn {n}", "annotations": []}}],
        "assistant_id": assistant.id if role == "assistant" else None,
        "run_id": "run_hosted" if role == "assistant" else None, "attachments": [],
        "metadata": {}, "completed_at": None, "incomplete_at": None,
        "incomplete_details": None}) for n, role in enumerate(["user", "assistant"] * 3)]
    return {"assistant": assistant, "file": file, "thread": thread, "messages": messages}


def test_what_was_saved_from_the_hosted_service_imports_and_reads_back(
    source: Settings, tmp_path: Path,
) -> None:
    hosted, saved = hosted_objects(), tmp_path / "saved"
    (saved / "threads").mkdir(parents=True)
    (saved / "files").mkdir()
    (saved / "assistants.json").write_text(json.dumps([hosted["assistant"].model_dump(
        mode="json")]))
    (saved / "files.json").write_text(json.dumps([hosted["file"].model_dump(mode="json")]))
    (saved / "files" / "file-kept").write_bytes(b"x,y\n1,2\n")
    (saved / "threads" / "thread_hosted1.json").write_text(json.dumps({
        "thread": hosted["thread"].model_dump(mode="json"),
        "messages": [m.model_dump(mode="json") for m in hosted["messages"]]}))
    made = subprocess.run([sys.executable, str(CONVERTER), str(saved), str(tmp_path / "b")],
                          capture_output=True, text=True, check=True)
    assert "6 messages" in made.stdout
    asyncio.run(import_bundle(source, tmp_path / "b", "fail", quiet))

    async def read() -> tuple[Any, Any, bytes]:
        async with served(source) as http:
            assistant = (await http.get("/v1/assistants/asst_hosted1")).json()
            messages = (await http.get("/v1/threads/thread_hosted1/messages",
                                       params={"order": "asc", "limit": 3})).json()
            content = (await http.get("/v1/files/file-kept/content")).content
            return assistant, messages, content

    assistant, messages, content = asyncio.run(read())
    expected = hosted["assistant"].model_dump(mode="json")
    for field in ("id", "created_at", "name", "model", "instructions", "tools", "metadata",
                  "temperature"):
        assert assistant[field] == expected[field], field
    assert assistant["tool_resources"] == {"code_interpreter": {"file_ids": ["file-kept"]}}
    assert [m["id"] for m in messages["data"]] == ["msg_hosted0", "msg_hosted1", "msg_hosted2"]
    assert messages["has_more"] is True
    assert messages["data"][1]["content"] == hosted["messages"][1].model_dump(
        mode="json")["content"]
    assert messages["data"][1]["run_id"] is None
    assert content == b"x,y\n1,2\n"
