"""Import's promises: an interrupted import run again ends where one run once does; conflicts
are settled by the policy asked for (and `fail` writes nothing); a project, or what changed
since a time, can be moved alone; key records and chunks can be left out."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistants_server.config import Settings
from assistants_server.transfer import archive
from assistants_server.transfer.archive import BundleError
from assistants_server.transfer.exporting import ExportOptions, export_bundle
from assistants_server.transfer.importing import ConflictError, import_bundle
from assistants_server.transfer.kinds import RecordError
from tests.fake_backend import Reply
from tests.transfer.conftest import ADMIN, quiet, served


async def fill(http: httpx.AsyncClient, script: list[Any]) -> dict[str, str]:
    """A file in a store, an assistant, a thread of 40 messages and a completed run."""
    file = (await http.post("/v1/files", data={"purpose": "assistants"}, files={
        "file": ("tides.txt", b"The keeper logs the tide at dawn. " * 30)})).json()
    store = (await http.post("/v1/vector_stores", json={"file_ids": [file["id"]]})).json()
    await until(http, f"/v1/vector_stores/{store['id']}", "completed")
    assistant = (await http.post("/v1/assistants", json={
        "model": "fake-model", "name": "Keeper", "tools": [{"type": "file_search"}],
        "tool_resources": {"file_search": {"vector_store_ids": [store["id"]]}}})).json()
    thread = (await http.post("/v1/threads", json={})).json()
    for n in range(40):
        await http.post(f"/v1/threads/{thread['id']}/messages",
                        json={"role": "user", "content": f"message {n}"})
    script.append(Reply(text="Noted."))
    run = (await http.post(f"/v1/threads/{thread['id']}/runs",
                           json={"assistant_id": assistant["id"]})).json()
    await until(http, f"/v1/threads/{thread['id']}/runs/{run['id']}", "completed")
    return {"file": file["id"], "store": store["id"], "assistant": assistant["id"],
            "thread": thread["id"]}


async def until(http: httpx.AsyncClient, path: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while (body := (await http.get(path)).json())["status"] != status:
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)
    return body


async def records(settings: Settings, directory: Path) -> dict[str, list[dict[str, Any]]]:
    """Every record of the database, as an export writes them."""
    await export_bundle(settings, directory, ExportOptions(), quiet)
    return {path.stem: [json.loads(line) for line in path.read_text().splitlines()]
            for path in sorted((directory / "records").iterdir())}


async def test_an_interrupted_import_run_again_ends_as_an_uninterrupted_one(
    source: Settings, target: Settings, second: Settings, script: list[Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with served(source) as http:
        await fill(http, script)
    await export_bundle(source, tmp_path / "bundle", ExportOptions(), quiet)
    monkeypatch.setattr(archive, "BATCH", 7)  # many transactions: a cut between two of them

    class Interrupted(Exception):
        pass

    def cut(total: int) -> Any:
        done = [0]

        def advance(records: int, size: int) -> None:
            done[0] += records
            if done[0] > total // 2:
                raise Interrupted
        return advance

    with pytest.raises(Interrupted):
        await import_bundle(target, tmp_path / "bundle", "fail", cut)
    halfway = await records(target, tmp_path / "halfway")
    assert 0 < len(halfway.get("messages", [])) < 41
    await import_bundle(target, tmp_path / "bundle", "fail", quiet)
    await import_bundle(second, tmp_path / "bundle", "fail", quiet)
    expected = await records(second, tmp_path / "whole")
    assert await records(target, tmp_path / "again") == expected
    assert len(expected["messages"]) == 41 and expected["search_chunks"]


async def test_conflicts_fail_by_default_and_skip_or_overwrite_when_asked(
    source: Settings, target: Settings, script: list[Any], tmp_path: Path,
) -> None:
    async with served(source) as http:
        ids = await fill(http, script)
    bundle = tmp_path / "bundle"
    await export_bundle(source, bundle, ExportOptions(), quiet)
    await import_bundle(target, bundle, "fail", quiet)
    async with served(target) as http:
        await http.post(f"/v1/assistants/{ids['assistant']}", json={"name": "Renamed"})
        messages = (await http.get(f"/v1/threads/{ids['thread']}/messages?limit=1")).json()
        gone = messages["data"][0]["id"]
        await http.delete(f"/v1/threads/{ids['thread']}/messages/{gone}")

    async def state() -> tuple[str, int]:
        async with served(target) as http:
            name = (await http.get(f"/v1/assistants/{ids['assistant']}")).json()["name"]
            held = await http.get(f"/v1/threads/{ids['thread']}/messages/{gone}")
            return name, held.status_code

    with pytest.raises(ConflictError) as refused:
        await import_bundle(target, bundle, "fail", quiet)
    assert f"assistants {ids['assistant']}" in str(refused.value)
    assert "--on-conflict skip" in str(refused.value)
    assert await state() == ("Renamed", 404)  # nothing was written, not even the message
    outcome = await import_bundle(target, bundle, "skip", quiet)
    assert outcome.outcomes["assistants"]["skipped"] == 1
    assert outcome.outcomes["messages"]["inserted"] == 1
    assert await state() == ("Renamed", 200)
    outcome = await import_bundle(target, bundle, "overwrite", quiet)
    assert outcome.outcomes["assistants"]["overwritten"] == 1
    assert await state() == ("Keeper", 200)


async def test_one_project_moves_alone_with_its_keys(
    source: Settings, target: Settings, script: list[Any], tmp_path: Path,
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with served(source) as http:
        await fill(http, script)
        project = (await http.post("/v1/organization/projects", json={"name": "B"},
                                   headers=admin)).json()
        account = (await http.post(f"/v1/organization/projects/{project['id']}/"
                                   "service_accounts", json={"name": "app"},
                                   headers=admin)).json()
        key = {"Authorization": f"Bearer {account['api_key']['value']}"}
        theirs = (await http.post("/v1/assistants", json={"model": "fake-model"},
                                  headers=key)).json()
    bundle = tmp_path / "b.tar"
    await export_bundle(source, bundle, ExportOptions(project=project["id"]), quiet)
    await import_bundle(target, bundle, "fail", quiet)
    moved = await records(target, tmp_path / "moved")
    assert [p["id"] for p in moved["projects"]] == ["proj_default", project["id"]]
    assert [k["project_id"] for k in moved["api_keys"]] == [project["id"]]
    assert moved.get("messages", []) == [] and moved.get("search_chunks", []) == []
    async with served(target) as http:
        listed = (await http.get("/v1/assistants", headers=key)).json()["data"]
        assert [a["id"] for a in listed] == [theirs["id"]]  # B's key works there
        assert (await http.get("/v1/assistants")).json()["data"] == []


async def test_without_keys_and_chunks_the_keys_stay_behind_and_files_are_indexed_again(
    source: Settings, target: Settings, script: list[Any], tmp_path: Path,
) -> None:
    async with served(source) as http:
        ids = await fill(http, script)
        found = (await http.post(f"/v1/vector_stores/{ids['store']}/search",
                                 json={"query": "tide"})).json()
    bundle = tmp_path / "bundle.tgz"
    await export_bundle(source, bundle, ExportOptions(keys=False, chunks=False), quiet)
    await import_bundle(target, bundle, "fail", quiet)
    moved = await records(target, tmp_path / "moved")
    assert "api_keys" not in moved or moved["api_keys"] == []
    async with served(target) as http:  # its ingestion indexes the file again
        store = await until(http, f"/v1/vector_stores/{ids['store']}", "completed")
        assert store["file_counts"]["completed"] == 1
        again = (await http.post(f"/v1/vector_stores/{ids['store']}/search",
                                 json={"query": "tide"})).json()
    assert [r["content"] for r in again["data"]] == [r["content"] for r in found["data"]]


async def test_what_changed_since_an_export_brings_a_copy_up_to_date(
    source: Settings, target: Settings, script: list[Any], tmp_path: Path,
) -> None:
    async with served(source) as http:
        ids = await fill(http, script)
        await export_bundle(source, tmp_path / "full", ExportOptions(), quiet)
        since = json.loads((tmp_path / "full" / "manifest.json").read_text())["exported_at"]
        await asyncio.sleep(1.1)  # timestamps are whole seconds
        await http.post(f"/v1/assistants/{ids['assistant']}", json={"metadata": {"v": "2"}})
        await http.post(f"/v1/threads/{ids['thread']}/messages",
                        json={"role": "user", "content": "one more"})
    await export_bundle(source, tmp_path / "changes", ExportOptions(since=since + 1), quiet)
    changes = json.loads((tmp_path / "changes" / "manifest.json").read_text())["counts"]
    assert changes["assistants"] == 1 and changes["messages"] == 1 and changes["files"] == 0
    await import_bundle(target, tmp_path / "full", "fail", quiet)
    await import_bundle(target, tmp_path / "changes", "overwrite", quiet)
    assert await records(target, tmp_path / "copy") == await records(source, tmp_path / "now")


async def test_bundles_that_cannot_be_read_are_refused_with_the_reason(
    source: Settings, tmp_path: Path,
) -> None:
    with pytest.raises(BundleError, match="has no manifest.json"):
        (tmp_path / "empty").mkdir()
        await import_bundle(source, tmp_path / "empty", "fail", quiet)
    bundle = tmp_path / "bundle"
    await export_bundle(source, bundle, ExportOptions(), quiet)
    manifest = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(BundleError, match="version 99; this server reads version 1"):
        await import_bundle(source, bundle, "fail", quiet)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    (bundle / "records" / "assistants.jsonl").write_text(
        json.dumps({"id": "asst_x", "created_at": 1, "model": "m", "colour": "red"}) + "\n")
    with pytest.raises(RecordError, match=r"assistants.jsonl:1: unknown field\(s\) colour"):
        await import_bundle(source, bundle, "fail", quiet)
    with pytest.raises(BundleError, match="already exists"):
        await export_bundle(source, bundle, ExportOptions(), quiet)


async def test_a_run_exported_in_progress_is_taken_over_by_the_importing_server(
    source: Settings, target: Settings, script: list[Any], tmp_path: Path,
) -> None:
    async with served(source) as http:
        ids = await fill(http, script)
        script.append(Reply(text="never heard", hang_seconds=30))
        run = (await http.post(f"/v1/threads/{ids['thread']}/runs",
                               json={"assistant_id": ids["assistant"]})).json()
        await until(http, f"/v1/threads/{ids['thread']}/runs/{run['id']}", "in_progress")
        await export_bundle(source, tmp_path / "bundle", ExportOptions(), quiet)
        script.clear()
    script.append(Reply(text="Taken over."))
    await import_bundle(target, tmp_path / "bundle", "fail", quiet)
    async with served(target) as http:
        await until(http, f"/v1/threads/{ids['thread']}/runs/{run['id']}", "completed")
        answer = (await http.get(f"/v1/threads/{ids['thread']}/messages?limit=1")).json()
    assert answer["data"][0]["content"][0]["text"]["value"] == "Taken over."


async def test_an_export_that_fails_leaves_nothing_behind(
    source: Settings, script: list[Any], tmp_path: Path,
) -> None:
    async with served(source) as http:
        ids = await fill(http, script)
    stored = source.data_dir / "files" / ids["file"]
    for wrong in (b"cut short", stored.read_bytes() + b"and more"):  # not what the record says
        stored.write_bytes(wrong)
        with pytest.raises(BundleError, match=f"stored bytes of file {ids['file']} are not"):
            await export_bundle(source, tmp_path / "bundle.tar", ExportOptions(), quiet)
        assert sorted(os.listdir(tmp_path)) == ["source"]


async def test_a_bundle_is_readable_by_its_owner_only(source: Settings, tmp_path: Path) -> None:
    for name in ("bundle", "bundle.tar"):
        await export_bundle(source, tmp_path / name, ExportOptions(), quiet)
        assert os.stat(tmp_path / name).st_mode & 0o077 == 0, name
    with pytest.raises(BundleError, match="is not a directory: make it first"):
        await export_bundle(source, tmp_path / "missing" / "b.tar", ExportOptions(), quiet)


def test_since_takes_unix_seconds_or_iso_8601_in_utc_unless_it_says_otherwise() -> None:
    from assistants_server.transfer.commands import _time

    assert _time("1796472506") == 1796472506
    assert _time("2026-12-01T08:00") == 1796112000
    assert _time("2026-12-01T09:00+01:00") == 1796112000
    with pytest.raises(argparse.ArgumentTypeError, match="not Unix seconds or an ISO 8601"):
        _time("last tuesday")


async def test_changes_whose_parents_the_database_lacks_are_refused_with_the_reason(
    source: Settings, target: Settings, script: list[Any], tmp_path: Path,
) -> None:
    async with served(source) as http:
        ids = await fill(http, script)
        since = int(time.time()) + 1
        await asyncio.sleep(1.1)
        await http.post(f"/v1/threads/{ids['thread']}/messages",
                        json={"role": "user", "content": "later"})
    await export_bundle(source, tmp_path / "changes", ExportOptions(since=since), quiet)
    with pytest.raises(BundleError, match="names an object that is neither in the database"):
        await import_bundle(target, tmp_path / "changes", "fail", quiet)
