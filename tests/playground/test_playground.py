"""The playground in a real browser: a user builds an assistant with a function and file_search,
fills a new vector store, chats with it and watches the answer stream in, opens the run, submits
the function's output and reads the cited answer; a code_interpreter chart shows inline; the
files and vector stores pages; a dropped stream resumed; a server with keys and a wrong key; and
the page against PostgreSQL + Redis with API processes apart from the worker that drives the
runs.

The screenshots written here (ASSISTANTS_TEST_SCREENSHOTS=docs/playground for the README's)
show each page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from assistants_server.config import Settings
from tests.conftest import BETA, LiveServer
from tests.fake_backend import Reply
from tests.runs.conftest import REDIS_URL
from tests.runs.test_code_interpreter import code_call
from tests.runs.test_process_death import HEADERS, _serve
from tests.test_cli import _free_port

REPORT = ("Quarterly report of the Acme Corporation.\n\nRevenue was 42 million dollars in the "
          "third quarter, up from 38 million a year before. Costs fell by 3 percent.\n")
WEATHER = {"name": "get_weather", "description": "The weather in a city now.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}
ANSWER = "Revenue was 42 million dollars【0:0†report.txt】, and Paris is sunny."
CHART = ("import matplotlib.pyplot as plt\n"
         "plt.plot([1, 2, 3], [1, 4, 9])\nplt.title('Squares')\nplt.show()")


@pytest.fixture
def database() -> str:
    return "sqlite"  # the embedded default; PostgreSQL + Redis below


@pytest.fixture
def settings_overrides(backend: LiveServer) -> dict[str, Any]:
    return {"backend_base_url": backend.url + "/v1", "lease_seconds": 3.0,
            "code_interpreter_timeout_seconds": 20.0}


def _api(server: LiveServer, key: str = "sk-any") -> httpx.Client:
    return httpx.Client(base_url=server.url + "/v1", timeout=30,
                        headers={**BETA, "Authorization": f"Bearer {key}"})


def _last_answer(page: Any) -> Any:
    return page.locator('[data-testid="message"][data-role="assistant"]').last


def _create_assistant(page: Any, report: Path) -> None:
    """The editor, as a user fills it: a function from JSON, file_search over a new store the
    report is uploaded into, indexed before the assistant is saved."""
    page.get_by_test_id("nav-assistants").click()
    page.get_by_test_id("new-assistant").click()
    page.get_by_test_id("assistant-name").fill("Analyst")
    page.get_by_test_id("assistant-model").select_option("fake-model")
    page.get_by_test_id("assistant-instructions").fill(
        "Answer from the report; call get_weather for the weather.")
    page.get_by_test_id("add-function").click()
    function = page.get_by_test_id("function-json").last
    function.fill('{"name": "get weather"}')
    expect(page.get_by_test_id("function-error").last).to_contain_text("name")
    function.fill(json.dumps(WEATHER, indent=2))
    expect(page.get_by_test_id("function-error").last).to_have_text("")
    page.get_by_test_id("tool-file-search").check()
    page.get_by_test_id("new-store").click()
    page.get_by_test_id("new-store-name").fill("Reports")
    page.get_by_test_id("new-store-name").press("Enter")
    page.get_by_test_id("file-search-upload").set_input_files(str(report))
    expect(page.get_by_test_id("store-file-status")).to_have_text("completed", timeout=30_000)
    page.get_by_test_id("save-assistant").click()
    expect(page).to_have_url(re.compile(r"#/assistants/asst_\w+$"))


def test_build_chat_and_debug_an_assistant(
    page: Any, live_server: LiveServer, script: list[Any], sent: list[dict[str, Any]],
    screenshots: Path, tmp_path: Path,
) -> None:
    report = tmp_path / "report.txt"
    report.write_text(REPORT)
    page.goto(live_server.url + "/")  # redirected to the playground
    expect(page).to_have_url(re.compile(r"/playground/"))
    _create_assistant(page, report)
    page.screenshot(path=screenshots / "assistant-editor.png", full_page=True)
    assistant_id = page.url.rsplit("/", 1)[1]
    with _api(live_server) as api:
        saved = api.get(f"/assistants/{assistant_id}").json()
        store_id = saved["tool_resources"]["file_search"]["vector_store_ids"][0]
        assert api.get(f"/vector_stores/{store_id}").json()["name"] == "Reports"
    assert [tool["type"] for tool in saved["tools"]] == ["function", "file_search"] or [
        tool["type"] for tool in saved["tools"]] == ["file_search", "function"]
    assert saved["name"] == "Analyst" and saved["model"] == "fake-model"

    # The chat: the model calls get_weather, the run waits for its output.
    script += [
        Reply(tool_calls=[{"id": "call_weather", "name": "get_weather",
                           "arguments": json.dumps({"city": "Paris"})}]),
        Reply(tool_calls=[{"id": "call_search", "name": "file_search",
                           "arguments": json.dumps({"queries": ["revenue third quarter"]})}]),
        Reply(text=ANSWER, chunk_chars=3, chunk_pause=0.06)]
    page.get_by_test_id("chat").click()
    expect(page).to_have_url(re.compile(r"#/threads/thread_\w+"))
    expect(page.get_by_test_id("chat-assistant")).to_have_value(assistant_id)
    page.get_by_test_id("message-input").fill("What was the revenue, and the weather in Paris?")
    page.get_by_test_id("message-input").press("Control+Enter")
    expect(page.get_by_test_id("run-status")).to_have_text("requires_action")
    expect(page.get_by_test_id("tool-call").first).to_contain_text("get_weather")
    expect(page.get_by_test_id("tool-call").first).to_contain_text("Paris")
    form = page.get_by_test_id("tool-output-form")
    expect(form).to_contain_text("get_weather")
    form.get_by_test_id("tool-output").fill("sunny, 22 C")
    form.get_by_test_id("submit-outputs").click()

    # Streamed: the answer is seen part-way before it is whole.
    page.wait_for_function("""() => {
        const texts = document.querySelectorAll(
            '[data-testid="message"][data-role="assistant"] [data-testid="message-text"]');
        const text = texts.length ? texts[texts.length - 1].textContent : '';
        return text.includes('Revenue') && !text.includes('sunny');
    }""")
    expect(page.get_by_test_id("run-status")).to_have_text("completed")
    answer = _last_answer(page)
    expect(answer.get_by_test_id("message-text")).to_contain_text(
        "Revenue was 42 million dollars")
    expect(answer.get_by_test_id("message-text")).to_contain_text("Paris is sunny.")
    expect(answer.get_by_test_id("message-text")).not_to_contain_text("【")
    expect(answer.get_by_test_id("citation")).to_have_count(1)
    expect(answer.get_by_test_id("footnote")).to_contain_text("report.txt")
    # The run's steps: the function call with its output, the search with what it found.
    calls = page.get_by_test_id("tool-call")
    expect(calls.filter(has_text="get_weather")).to_contain_text("sunny, 22 C")
    expect(page.get_by_test_id("search-hit").first).to_contain_text("report.txt")
    expect(page.get_by_test_id("search-hit").first).to_contain_text("42 million")
    page.screenshot(path=screenshots / "chat-and-run.png", full_page=True)
    # What the model was given: the output typed into the form, then the report's passage.
    tool_messages = [m for body in sent for m in body["messages"] if m["role"] == "tool"]
    assert tool_messages[0]["content"] == "sunny, 22 C"
    assert "42 million" in json.dumps(sent[-1]["messages"])

    # The citation opens the cited file: its bytes, fetched with the key.
    with page.expect_download() as download:
        answer.get_by_test_id("citation").first.click()
    assert Path(download.value.path()).read_text() == REPORT

    # Dark, as a user on a dark desktop sees it.
    page.get_by_test_id("theme-toggle").click()
    assert page.evaluate("document.documentElement.dataset.theme") in ("dark", "light")
    if page.evaluate("document.documentElement.dataset.theme") != "dark":
        page.get_by_test_id("theme-toggle").click()
    page.screenshot(path=screenshots / "chat-dark.png", full_page=True)
    page.get_by_test_id("theme-toggle").click()

    # The threads list, newest first, with the chat's thread.
    page.get_by_test_id("nav-threads").click()
    expect(page.get_by_test_id("thread-item").first).to_be_visible()
    page.screenshot(path=screenshots / "threads.png", full_page=True)
    page.get_by_test_id("nav-assistants").click()
    expect(page.get_by_test_id("assistant-item")).to_contain_text("Analyst")
    page.screenshot(path=screenshots / "assistants.png", full_page=True)


def test_a_code_interpreter_chart_shows_inline(
    page: Any, live_server: LiveServer, script: list[Any], screenshots: Path,
) -> None:
    with _api(live_server) as api:
        tutor = api.post("/assistants", json={
            "model": "fake-model", "name": "Math Tutor",
            "tools": [{"type": "code_interpreter"}]}).json()
        thread = api.post("/threads", json={}).json()
    script += [code_call(CHART), Reply(text="Here are the squares.")]
    page.goto(f"{live_server.url}/playground/#/threads/{thread['id']}")
    page.get_by_test_id("chat-assistant").select_option(tutor["id"])
    page.get_by_test_id("message-input").fill("Plot the first three squares.")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("run-status")).to_have_text("completed", timeout=30_000)
    image = page.get_by_test_id("message-image").first
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth > 100")
    expect(page.get_by_test_id("tool-call").first).to_contain_text("plt.plot")
    expect(page.get_by_test_id("step-image").first).to_be_visible()
    page.screenshot(path=screenshots / "code-interpreter.png", full_page=True)


def test_a_dropped_stream_resumes_with_the_last_event_id(
    page: Any, live_server: LiveServer, script: list[Any],
) -> None:
    """The connection of a streamed run breaks after its first delta: the page asks for the
    rest with the `Last-Event-ID` of the last event it got, follows the run to its end and
    shows the whole answer."""
    with _api(live_server) as api:
        assistant = api.post("/assistants", json={"model": "fake-model"}).json()
        thread = api.post("/threads", json={}).json()
    script.append(Reply(text="One, two, three, four.", chunk_chars=4))
    cut: dict[str, str] = {}

    def break_after_the_first_delta(route: Any) -> None:
        frames = route.fetch().text().split("\n\n")
        first = next(n for n, frame in enumerate(frames) if "thread.message.delta" in frame)
        kept = frames[:first + 1]
        cut["last_id"] = re.findall(r"^id: (\d+)$", "\n\n".join(kept), re.M)[-1]
        route.fulfill(status=200, headers={"content-type": "text/event-stream"},
                      body="\n\n".join(kept) + "\n\n")

    page.route(re.compile(r"/v1/threads/thread_\w+/runs$"), break_after_the_first_delta)
    resumed: list[dict[str, str]] = []
    page.on("request", lambda request: "/events" in request.url and resumed.append(
        request.headers))
    page.goto(f"{live_server.url}/playground/#/threads/{thread['id']}")
    page.get_by_test_id("chat-assistant").select_option(assistant["id"])
    page.get_by_test_id("message-input").fill("Count to four.")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("run-status")).to_have_text("completed")
    expect(_last_answer(page).get_by_test_id("message-text")).to_have_text(
        "One, two, three, four.")
    assert [headers.get("last-event-id") for headers in resumed][:1] == [cut["last_id"]]


def test_files_and_vector_stores_pages(
    page: Any, live_server: LiveServer, screenshots: Path, tmp_path: Path,
) -> None:
    report = tmp_path / "report.txt"
    report.write_text(REPORT)
    page.goto(live_server.url + "/playground/#/files")
    page.get_by_test_id("file-upload").set_input_files(str(report))
    expect(page.get_by_test_id("file-item").filter(has_text="report.txt")).to_have_count(1)
    page.screenshot(path=screenshots / "files.png", full_page=True)
    with page.expect_download() as download:
        page.get_by_test_id("file-item").filter(has_text="report.txt").get_by_role(
            "button", name=re.compile("download", re.I)).click()
    assert Path(download.value.path()).read_text() == REPORT

    page.get_by_test_id("nav-vector-stores").click()
    page.get_by_test_id("new-vector-store").click()
    page.get_by_test_id("vector-store-name").fill("Annual reports")
    page.get_by_test_id("vector-store-name").press("Enter")
    page.get_by_test_id("vector-store-item").filter(has_text="Annual reports").click()
    annual = tmp_path / "annual.txt"
    annual.write_text(REPORT)
    page.get_by_test_id("store-upload").set_input_files(str(annual))
    expect(page.get_by_test_id("store-file-status")).to_have_text("completed", timeout=30_000)
    page.get_by_test_id("store-search").fill("revenue in the third quarter")
    page.get_by_test_id("store-search-go").click()
    expect(page.get_by_test_id("search-result").first).to_contain_text("42 million")
    expect(page.get_by_test_id("search-result").first).to_contain_text("annual.txt")
    page.screenshot(path=screenshots / "vector-store.png", full_page=True)

    # Deleting on the files page takes the file off the list, and off the server.
    page.get_by_test_id("nav-files").click()
    row = page.get_by_test_id("file-item").filter(has_text="report.txt").first
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=re.compile("delete", re.I)).click()
    expect(page.get_by_test_id("file-item").filter(has_text="report.txt")).to_have_count(0)
    expect(page.get_by_test_id("file-item").filter(has_text="annual.txt")).to_have_count(1)
    with _api(live_server) as api:
        assert [f["filename"] for f in api.get("/files").json()["data"]] == ["annual.txt"]


class TestWithKeys:
    @pytest.fixture
    def settings_overrides(self, backend: LiveServer) -> dict[str, Any]:
        return {"backend_base_url": backend.url + "/v1", "api_keys": ["sk-right-key-1234"]}

    def test_a_wrong_key_is_named_and_the_right_one_works(
        self, page: Any, live_server: LiveServer, screenshots: Path,
    ) -> None:
        with _api(live_server, "sk-right-key-1234") as api:
            api.post("/assistants", json={"model": "fake-model", "name": "Keyed"})
        page.goto(live_server.url + "/playground/")
        expect(page.get_by_test_id("error")).to_contain_text("You didn't provide an API key")
        page.get_by_test_id("api-key").fill("sk-wrong-key-0000")
        page.get_by_test_id("save-key").click()
        expect(page.get_by_test_id("error")).to_contain_text("Incorrect API key provided")
        page.screenshot(path=screenshots / "wrong-key.png")
        page.get_by_test_id("api-key").fill("sk-right-key-1234")
        page.get_by_test_id("save-key").click()
        expect(page.get_by_test_id("assistant-item")).to_contain_text("Keyed")
        expect(page.get_by_test_id("error")).to_have_text("")
        # Kept for the tab only, never in the address.
        assert "sk-right" not in page.url
        assert page.evaluate("JSON.stringify(sessionStorage)").count("sk-right-key-1234") == 1
        assert "sk-right" not in page.evaluate("JSON.stringify(localStorage)")


class TestScaledOut:
    """Two API processes and a worker on PostgreSQL + Redis: the page on either API process
    streams the runs the worker drives."""

    @pytest.fixture
    def database(self) -> str:
        return "postgres"

    def test_the_page_streams_through_any_api_process(
        self, page: Any, settings: Settings, prefix: str, script: list[Any],
    ) -> None:
        redis = {"redis_url": REDIS_URL, "redis_prefix": prefix}
        ports = [_free_port() for _ in range(3)]
        processes = [_serve(settings, ports[0], role="api", **redis),
                     _serve(settings, ports[1], role="api", **redis),
                     _serve(settings, ports[2], role="worker", **redis)]
        try:
            first, second = (f"http://127.0.0.1:{port}" for port in ports[:2])
            with httpx.Client(base_url=first + "/v1", headers=HEADERS, timeout=30) as api:
                assistant = api.post("/assistants", json={"model": "fake-model"}).json()
            for n, origin in enumerate((first, second)):
                script.append(Reply(text=f"Answer {n} from the worker.", chunk_chars=2,
                                    chunk_pause=0.02))
                page.goto(origin + "/playground/#/threads")
                page.get_by_test_id("new-thread").click()
                expect(page).to_have_url(re.compile(r"#/threads/thread_\w+"))
                page.get_by_test_id("chat-assistant").select_option(assistant["id"])
                page.get_by_test_id("message-input").fill(f"Question {n}")
                page.get_by_test_id("send").click()
                expect(page.get_by_test_id("run-status")).to_have_text("completed")
                expect(_last_answer(page).get_by_test_id("message-text")).to_have_text(
                    f"Answer {n} from the worker.")
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
