"""A file_search's excerpts are cut to a quarter of the model's context window, best first,
so that one search cannot push a small model's prompt over its limit."""

from __future__ import annotations

from typing import Any

import pytest

from assistants_server.tokens import count_text
from tests.conftest import LiveServer
from tests.fake_backend import Reply
from tests.runs.test_file_search import indexed, search_call, stores

WINDOW = 4000


@pytest.fixture
def settings_overrides(backend: LiveServer) -> dict[str, Any]:
    return {"backend_base_url": backend.url + "/v1", "context_window_tokens": WINDOW}


def test_one_search_takes_at_most_a_quarter_of_a_small_context(
    sdk: Any, script: list[Any], sent: list[dict[str, Any]]
) -> None:
    words = " ".join(f"budget{i} alpha beta gamma delta" for i in range(600))
    files = [sdk.files.create(file=(f"doc{i}.txt", f"Part {i}. {words}".encode()),
                              purpose="assistants") for i in range(3)]
    store = stores(sdk).create(file_ids=[f.id for f in files])
    indexed(sdk, store.id)
    assistant = sdk.beta.assistants.create(
        model="fake-model", tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    script += [search_call("alpha beta gamma"), Reply(text="Done.")]
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Search."}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    shown = sent[1]["messages"][-1]["content"]
    assert shown.count("【0:") == 1 and count_text(shown) <= WINDOW // 4
    steps = sdk.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    assert len(steps.data[0].step_details.tool_calls[0].file_search.results) == 1
