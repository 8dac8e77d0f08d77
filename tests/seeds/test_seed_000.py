"""The streaming tutorial's cells, run unchanged against the server with only OPENAI_BASE_URL
(and a key) set, on a configuration that maps the tutorial's `gpt-4o` and
`gpt-4o-mini-2024-07-18` to a local model (a fake one here)."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from assistants_server.backends.config import BackendConfig, ModelRoute, ModelsConfig
from tests.conftest import LiveServer
from tests.fake_backend import Reply, create_fake_backend
from tests.seeds.seed_000_cells import CELLS

WEATHER_CALL = [{"id": "call_w1", "name": "get_current_weather",
                 "arguments": '{"location":"beijing"}'}]


@pytest.fixture
def database() -> str:
    return "sqlite"


@pytest.fixture
def backend() -> Iterator[LiveServer]:
    with LiveServer(create_fake_backend(["qwen2.5:0.5b"])) as server:
        yield server


@pytest.fixture
def settings_overrides(backend: LiveServer) -> dict[str, Any]:
    local = BackendConfig(name="ollama", base_url=backend.url + "/v1")
    return {"models_config": ModelsConfig(backends=[local], models=[
        ModelRoute(name="gpt-4o", backend="ollama", model="qwen2.5:0.5b",
                   aliases=["gpt-4o-mini-2024-07-18"])])}


def test_the_streaming_tutorial_runs_unchanged(
    live_server: LiveServer, backend: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", live_server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-anything")
    fake = backend.server.config.app.state
    story = Reply(text="从前有一个小女孩。她在森林里遇到了一只怪兽。", chunk_chars=3)
    fake.script.extend([
        Reply(text="你好！我是一个人工智能助手。"), Reply(text="你好！我是小助理。", chunk_chars=2),
        story, story, story, story, story, story,  # cells 16-28: runs and create_and_run
        *[Reply(tool_calls=WEATHER_CALL) for _ in range(4)],  # cells 51-57
        Reply(text="北京现在15摄氏度。", chunk_chars=2)])  # cell 57's submitted outputs
    namespace: dict[str, Any] = {"__name__": "__main__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for number, code in CELLS:
            try:
                exec(compile(code, f"<cell {number}>", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"cell In [{number}] failed: {exc!r}") from exc
    out = printed.getvalue()
    assert "content='你好！我是一个人工智能助手。'" in out  # cell 6, not streamed
    assert "content='你好', " in out  # cell 8, streamed
    assert "thread.run.completed" in out and "从前有一个小女孩" in out  # cells 16-28
    assert "Delta Event Arguments:\n{\"location\":\"beijing\"}" not in out  # in fragments
    assert "Requires Action Data:" in out  # cell 53
    assert 'Function Result for get_current_weather: {"location": "Beijing"' in out
    assert "Completed Message Text: 北京现在15摄氏度。" in out  # cell 57, after the outputs
    assert namespace["assistant"].model == "gpt-4o-mini-2024-07-18"
    sent = fake.bodies
    assert {body["model"] for body in sent} == {"qwen2.5:0.5b"}
    assert sent[-1]["messages"][-1] == {
        "role": "tool", "tool_call_id": "call_w1",
        "content": json.dumps({"location": "Beijing", "temperature": "15", "unit": "celsius"})}
