"""The code_interpreter tool in runs, through the official SDK over a real socket, with the
model's code executed in the thread's sandbox session: the cookbook's flow (the code in the
run steps), state kept across runs of one thread, a chart returned as an image file, a CSV
attachment read and a file written back, streaming, and code that misbehaves."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from assistants_server.config import Settings
from tests.conftest import LiveServer
from tests.fake_backend import Reply

FIBONACCI = """def generate_fibonacci(n):
    fib_sequence = [0, 1]
    while len(fib_sequence) < n:
        fib_sequence.append(fib_sequence[-1] + fib_sequence[-2])
    return fib_sequence

first_20_fibonacci = generate_fibonacci(20)
first_20_fibonacci"""


@pytest.fixture
def settings_overrides(backend: LiveServer) -> dict[str, Any]:
    return {"backend_base_url": backend.url + "/v1", "lease_seconds": 3.0,
            "code_interpreter_timeout_seconds": 5.0}


def code_call(code: str, call_id: str = "call_code") -> Reply:
    return Reply(tool_calls=[{"id": call_id, "name": "code_interpreter",
                              "arguments": json.dumps({"code": code})}])


def run_code(sdk: Any, script: list[Any], thread_id: str, assistant_id: str, code: str,
             answer: str = "Done.") -> Any:
    script += [code_call(code), Reply(text=answer)]
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "completed", run.last_error
    return run


def code_step(sdk: Any, thread_id: str, run_id: str) -> Any:
    steps = sdk.beta.threads.runs.steps.list(thread_id=thread_id, run_id=run_id, order="asc")
    return next(s for s in steps if s.type == "tool_calls").step_details.tool_calls[0]


@pytest.fixture
def tutor(sdk: Any) -> Any:
    return sdk.beta.assistants.create(
        model="fake-model", name="Math Tutor", tools=[{"type": "code_interpreter"}],
        instructions="You are a personal math tutor. Write and run code to answer.")


def test_cookbook_flow_shows_the_code_and_its_output_in_the_steps(
    sdk: Any, script: list[Any], sent: list[dict[str, Any]], tutor: Any
) -> None:
    thread = sdk.beta.threads.create(messages=[
        {"role": "user", "content": "Generate the first 20 fibbonaci numbers with code."}])
    run = run_code(sdk, script, thread.id, tutor.id, FIBONACCI, "Here they are.")
    call = code_step(sdk, thread.id, run.id)
    assert call.type == "code_interpreter" and call.code_interpreter.input == FIBONACCI
    (logs,) = call.code_interpreter.outputs
    assert logs.type == "logs" and "4181" in logs.logs
    assert [t["function"]["name"] for t in sent[0]["tools"]] == ["code_interpreter"]
    assert "4181" in sent[1]["messages"][-1]["content"]
    answer = sdk.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert answer.content[0].text.value == "Here they are."


def test_state_is_kept_across_two_runs_of_one_thread(
    sdk: Any, script: list[Any], tutor: Any
) -> None:
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Remember 41."}])
    run_code(sdk, script, thread.id, tutor.id, "x = 41")
    sdk.beta.threads.messages.create(thread_id=thread.id, role="user", content="Add one.")
    run = run_code(sdk, script, thread.id, tutor.id, "x + 1")
    assert code_step(sdk, thread.id, run.id).code_interpreter.outputs[0].logs == "42"
    other = sdk.beta.threads.create(messages=[{"role": "user", "content": "x?"}])
    run = run_code(sdk, script, other.id, tutor.id, "x")
    assert "NameError" in code_step(sdk, other.id, run.id).code_interpreter.outputs[0].logs


def test_a_chart_comes_back_as_an_image_file(sdk: Any, script: list[Any], tutor: Any) -> None:
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Plot squares."}])
    chart = ("import matplotlib.pyplot as plt\n"
             "plt.plot([1, 2, 3], [1, 4, 9])\nplt.title('Squares')\nplt.show()")
    run = run_code(sdk, script, thread.id, tutor.id, chart, "Here is the chart.")
    outputs = code_step(sdk, thread.id, run.id).code_interpreter.outputs
    (image,) = [o for o in outputs if o.type == "image"]
    stored = sdk.files.retrieve(image.image.file_id)
    assert stored.purpose == "assistants_output" and stored.filename.endswith(".png")
    assert sdk.files.content(image.image.file_id).content.startswith(b"\x89PNG\r\n\x1a\n")
    message = sdk.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert [part.type for part in message.content] == ["image_file", "text"]
    assert message.content[0].image_file.file_id == image.image.file_id


def test_a_csv_attachment_is_read_and_a_written_file_is_linked(
    sdk: Any, script: list[Any], tutor: Any
) -> None:
    data = sdk.files.create(file=("sales.csv", b"month,amount\njan,10\nfeb,32\n"),
                            purpose="assistants")
    thread = sdk.beta.threads.create(messages=[{
        "role": "user", "content": "Total the sales and give me a file.",
        "attachments": [{"file_id": data.id, "tools": [{"type": "code_interpreter"}]}]}])
    code = ("import csv\n"
            "rows = list(csv.DictReader(open('/mnt/data/sales.csv')))\n"
            "total = sum(int(r['amount']) for r in rows)\n"
            "open('/mnt/data/total.csv', 'w').write(f'total\\n{total}\\n')\n"
            "print(total)")
    answer = "The total is 42: [download](sandbox:/mnt/data/total.csv)."
    run = run_code(sdk, script, thread.id, tutor.id, code, answer)
    assert code_step(sdk, thread.id, run.id).code_interpreter.outputs[0].logs.strip() == "42"
    text = sdk.beta.threads.messages.list(thread_id=thread.id).data[0].content[0].text
    (link,) = text.annotations
    assert link.type == "file_path" and link.text == "sandbox:/mnt/data/total.csv"
    assert text.value[link.start_index:link.end_index] == link.text
    assert sdk.files.content(link.file_path.file_id).content == b"total\n42\n"


def test_streaming_relays_the_code_and_its_outputs(
    sdk: Any, script: list[Any], tutor: Any
) -> None:
    script += [code_call("print('hello from the sandbox')"), Reply(text="It printed.")]
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Say hello."}])
    with sdk.beta.threads.runs.stream(thread_id=thread.id, assistant_id=tutor.id) as stream:
        events = list(stream)
        steps = stream.get_final_run_steps()
    deltas = [e.data.delta.step_details.tool_calls[0] for e in events
              if e.event == "thread.run.step.delta"]
    assert deltas[0].id == "call_code" and deltas[0].code_interpreter.input == ""
    code = "".join(d.code_interpreter.input or "" for d in deltas)
    assert code == "print('hello from the sandbox')"
    (output,) = [o for d in deltas for o in d.code_interpreter.outputs or []]
    assert output.type == "logs" and output.logs == "hello from the sandbox\n"
    tool_step = next(s for s in steps if s.type == "tool_calls")
    assert tool_step.step_details.tool_calls[0].code_interpreter.outputs[0].logs == (
        "hello from the sandbox\n")
    assert events[-1].event == "thread.run.completed"


def test_misbehaving_code_is_reported_to_the_model_and_the_server_goes_on(
    sdk: Any, script: list[Any], sent: list[dict[str, Any]], tutor: Any,
    live_server: LiveServer, settings: Settings,
) -> None:
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Loop forever."}])
    run = run_code(sdk, script, thread.id, tutor.id, "while True:\n    pass")
    assert "timed out" in sent[1]["messages"][-1]["content"]
    assert httpx.get(live_server.url + "/health").status_code == 200
    secret = str(settings.data_dir / "assistants.db")
    run = run_code(sdk, script, thread.id, tutor.id,
                   f"import os\nprint(open({secret!r}, 'rb').read(16))")
    shown = code_step(sdk, thread.id, run.id).code_interpreter.outputs[0].logs
    assert "FileNotFoundError" in shown or "PermissionError" in shown
    run = run_code(sdk, script, thread.id, tutor.id,
                   "import os\nsorted(k for k in os.environ if k.startswith('ASSISTANTS'))")
    assert code_step(sdk, thread.id, run.id).code_interpreter.outputs[0].logs == "[]"


def test_one_execution_saves_at_most_100_mb_of_files(
    sdk: Any, script: list[Any], sent: list[dict[str, Any]], tutor: Any
) -> None:
    """A cell writing 120 MB does not copy it all into the file store: what fits is saved,
    and the model is told which files were not."""
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Make big files."}])
    code = ("for name in ('a.bin', 'b.bin', 'c.bin'):\n"
            "    open('/mnt/data/' + name, 'wb').write(b'x' * 40_000_000)")
    run = run_code(sdk, script, thread.id, tutor.id, code)
    saved = list(sdk.files.list(purpose="assistants_output"))  # this test's database
    assert sum(f.bytes for f in saved) <= 100_000_000 and len(saved) == 2
    told = next(m["content"] for m in sent[-1]["messages"] if m["role"] == "tool")
    assert "Not saved" in told and "100 MB" in told
    assert run.status == "completed"
