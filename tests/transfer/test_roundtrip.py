"""A server's data moved to another: filled through the SDK on SQLite, exported, imported into
PostgreSQL, and every list (paged with cursors, both orders), retrieve, file content and
search answered by the new server exactly as by the old one."""

from __future__ import annotations

import hashlib
import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from assistants_server.app import create_app
from assistants_server.cli import main
from assistants_server.config import Settings
from tests.conftest import BETA, LiveServer
from tests.fake_backend import Reply
from tests.transfer.conftest import ADMIN, DEFAULT_KEY, server_settings
from tests.transfer.test_schemas import valid_records

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
NOTES = ("The lighthouse keeper logs the tide at dawn. " * 40).encode()
RECIPES = ("Sourdough needs a starter fed twice a day. " * 40).encode()


@pytest.fixture
def on_postgresql(tmp_path: Path, backend: LiveServer) -> Iterator[Settings]:
    yield from server_settings("postgres", tmp_path / "target", backend)


def use(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment the CLI reads its settings from, naming `settings`' database."""
    for name in ("data_dir", "database_url", "database_schema"):
        value = getattr(settings, name)
        if value is None:
            monkeypatch.delenv(f"ASSISTANTS_{name.upper()}", raising=False)
        else:
            monkeypatch.setenv(f"ASSISTANTS_{name.upper()}", str(value))


def _settle(poll: Any, done: set[str]) -> Any:
    deadline = time.monotonic() + 20
    while (obj := poll()).status not in done:
        assert time.monotonic() < deadline, obj
        time.sleep(0.05)
    return obj


def fill(sdk: openai.OpenAI, script: list[Any], admin: httpx.Client) -> str:
    """Something of everything: files, stores (a batch too), assistants with every tool,
    threads with many messages and attachments, runs with tool calls, deletions."""
    notes = sdk.files.create(file=("notes.txt", NOTES), purpose="assistants")
    recipes = sdk.files.create(file=("recipes.md", RECIPES), purpose="assistants")
    data = sdk.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="assistants")
    store = sdk.vector_stores.create(name="Notes", file_ids=[notes.id],
                                     metadata={"team": "ops"})
    sdk.vector_stores.file_batches.create_and_poll(vector_store_id=store.id,
                                                   file_ids=[recipes.id])
    _settle(lambda: sdk.vector_stores.retrieve(store.id), {"completed"})
    assistant = sdk.beta.assistants.create(
        model="fake-model", name="Everything", instructions="Help.", metadata={"v": "1"},
        tools=[{"type": "code_interpreter"}, {"type": "file_search"}, WEATHER],
        tool_resources={"code_interpreter": {"file_ids": [data.id]},
                        "file_search": {"vector_store_ids": [store.id]}}, temperature=0.3)
    for n in range(3):
        sdk.beta.assistants.create(model="fake-model", name=f"Helper {n}")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    for n in range(200):
        attachments = [{"file_id": data.id, "tools": [{"type": "code_interpreter"}]}] \
            if n % 50 == 0 else []
        sdk.beta.threads.messages.create(thread.id, role="user", content=f"message {n}",
                                         attachments=attachments, metadata={"n": str(n)})
    script.extend([
        Reply(tool_calls=[{"id": "call_w", "name": "get_weather",
                           "arguments": json.dumps({"city": "Oslo"})}]),
        Reply(text="Cold in Oslo."),
        Reply(tool_calls=[{"id": "call_fs", "name": "file_search",
                           "arguments": json.dumps({"queries": ["tide"]})}]),
        Reply(text="The keeper logs the tide."),
    ])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action", run
    run = sdk.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id,
        tool_outputs=[{"tool_call_id": "call_w", "output": "-3 C"}])
    assert run.status == "completed", run
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    for n in range(4):
        sdk.beta.threads.create(metadata={"n": str(n)})
    gone = sdk.beta.threads.messages.create(thread.id, role="user", content="oops")
    sdk.beta.threads.messages.delete(gone.id, thread_id=thread.id)
    sdk.beta.threads.delete(sdk.beta.threads.create().id)
    # A second project, with its own key and objects.
    project = admin.post("/v1/organization/projects", json={"name": "Team B"}).json()
    account = admin.post(f"/v1/organization/projects/{project['id']}/service_accounts",
                         json={"name": "app"}).json()
    theirs = openai.OpenAI(base_url=str(sdk.base_url), api_key=account["api_key"]["value"],
                           max_retries=0)
    theirs.beta.assistants.create(model="fake-model", name="B's")
    theirs.beta.threads.create(messages=[{"role": "user", "content": "B's question"}])
    return str(account["api_key"]["value"])


class Crawler:
    """Everything a client can read, as the server answers it."""

    def __init__(self, http: httpx.Client, key: str) -> None:
        self.http, self.seen = http, {}
        self.auth = {"Authorization": f"Bearer {key}", **BETA}

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params, headers=self.auth)
        assert response.status_code == 200, (path, response.text)
        self.seen[f"GET {path} {sorted(params.items())}"] = response.json()
        return response.json()

    def every(self, path: str, limit: int = 3) -> list[dict[str, Any]]:
        """All pages, both orders; the objects in ascending order."""
        found: list[dict[str, Any]] = []
        for order in ("asc", "desc"):
            after, objects = None, []
            while True:
                page = self.get(path, limit=limit, order=order,
                                **({"after": after} if after else {}))
                objects += page["data"]
                if not page["has_more"]:
                    break
                after = page["last_id"]
            found = found or objects
        return found

    def crawl(self) -> dict[str, Any]:
        for assistant in self.every("/v1/assistants"):
            self.get(f"/v1/assistants/{assistant['id']}")
        for file in self.every("/v1/files"):
            self.get(f"/v1/files/{file['id']}")
            content = self.http.get(f"/v1/files/{file['id']}/content", headers=self.auth)
            self.seen[f"content {file['id']}"] = hashlib.sha256(content.content).hexdigest()
        stores = self.every("/v1/vector_stores")
        for store in stores:
            base = f"/v1/vector_stores/{store['id']}"
            self.get(base)
            for file in self.every(f"{base}/files", limit=1):
                self.get(f"{base}/files/{file['id']}")
        for thread in self.every("/v1/threads"):
            base = f"/v1/threads/{thread['id']}"
            self.get(base)
            for message in self.every(f"{base}/messages", limit=20):
                self.get(f"{base}/messages/{message['id']}")
            for run in self.every(f"{base}/runs"):
                self.get(f"{base}/runs/{run['id']}")
                for step in self.every(f"{base}/runs/{run['id']}/steps", limit=1):
                    self.get(f"{base}/runs/{run['id']}/steps/{step['id']}")
        for store in stores:  # last: a search makes the store active (`last_active_at`)
            for query in ("tide", "starter"):
                found = self.http.post(f"/v1/vector_stores/{store['id']}/search",
                                       json={"query": query}, headers=self.auth)
                self.seen[f"search {store['id']} {query}"] = found.json()
        return self.seen


def everything(settings: Settings, keys: list[str]) -> dict[str, Any]:
    """What the server on `settings` answers to the admin key and to `keys`."""
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as http:
        admin = Crawler(http, ADMIN)
        seen: dict[str, Any] = {"projects": admin.every("/v1/organization/projects")}
        for project in admin.every("/v1/organization/projects"):
            admin.every(f"/v1/organization/projects/{project['id']}/api_keys")
        seen |= admin.seen
        for key in keys:
            seen |= {f"{key[:12]} {k}": v for k, v in Crawler(http, key).crawl().items()}
        return seen


def filled(source: Settings, script: list[Any]) -> list[str]:
    """The keys of the source's two projects, once it is filled."""
    with LiveServer(create_app(source)) as server, \
            httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"}) \
            as admin:
        sdk = openai.OpenAI(base_url=server.url + "/v1", api_key=DEFAULT_KEY, max_retries=0)
        return [DEFAULT_KEY, fill(sdk, script, admin)]


def test_a_sqlite_servers_data_answers_the_same_from_postgresql(
    source: Settings, on_postgresql: Settings, script: list[Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    keys = filled(source, script)
    use(source, monkeypatch)
    assert main(["export", str(tmp_path / "bundle")]) == 0
    assert main(["export", str(tmp_path / "bundle.tar.gz")]) == 0
    assert "exported" in capsys.readouterr().out
    assert valid_records(tmp_path / "bundle") > 200  # as docs/bundle/ describes them
    with tarfile.open(tmp_path / "bundle.tar.gz") as archive:  # the same members, in order
        names = archive.getnames()
        assert names[0] == "manifest.json"
        assert names.index("records/files.jsonl") > max(
            i for i, name in enumerate(names) if name.startswith("files/"))
        assert {n for n in names if n != "manifest.json"} == {
            p.relative_to(tmp_path / "bundle").as_posix()
            for p in (tmp_path / "bundle").rglob("*") if p.is_file()} - {"manifest.json"}
    before = everything(source, keys)
    use(on_postgresql, monkeypatch)
    assert main(["import", str(tmp_path / "bundle.tar.gz")]) == 0
    printed = capsys.readouterr().out
    assert "messages" in printed and "inserted" in printed
    after = everything(on_postgresql, keys)
    assert after.keys() == before.keys()
    differ = [k for k in before if before[k] != after[k]]
    # Equal as JSON: PostgreSQL's JSONB orders an object's keys its own way.
    assert differ == [], (len(differ), differ[0], json.dumps(before[differ[0]]),
                          json.dumps(after[differ[0]]))
