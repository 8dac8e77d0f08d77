"""Real local models, end to end: SmolLM2-135M-Instruct under llama.cpp's llama-server --jinja
(a `native` backend) and under llama-cpp-python's own server (`native` with tool choices its
grammar enforces, and `tagged`), behind assistants-server with a configuration that maps the
tutorials' model names to them, driven by the official SDK.

It runs the README's SDK example, a function call with submit_tool_outputs_and_poll, a
streamed answer and a file_search question on each public model, then measures time to first
token through the server (chat completions passed through, and a streamed run) against asking
llama-server directly with the same messages, alternated. Builds the servers first
(tests/real/build.sh; minutes the first time). Prints a report; writes JSON to bench/results/.
Not part of the test suite.

    .venv/bin/python bench/real_models.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import openai

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import RESULTS, ROOT, free_port  # noqa: E402
from real_scenarios import SCENARIOS  # noqa: E402

# Both sides ask for the same answer length (a run's max_completion_tokens is at least 256).
ANSWER_TOKENS = 256
PROMPTS = ["Say hello.", "Name a colour.", "What is 2 + 2?", "Write one word.",
           "Greet me in French."]


def build() -> dict[str, str]:
    """The paths tests/real/build.sh prints (it builds what is missing)."""
    subprocess.run(["bash", str(ROOT / "tests" / "real" / "build.sh")], check=True,
                   stdout=subprocess.DEVNULL)
    cache = Path(os.environ.get("LLAMA_CACHE", "/work/cache/llama"))
    pairs = (line.split("=", 1) for line in (cache / "paths.env").read_text().splitlines()
             if "=" in line)
    return {key: value for key, value in pairs}


def start(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env=env or os.environ.copy())


def wait_until(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def configuration(llama_server: int, llama_python: int) -> str:
    return f"""\
backends:
  - name: llama-server                # llama.cpp's server --jinja: parses tool calls itself
    base_url: http://127.0.0.1:{llama_server}/v1
    max_concurrency: 1                # started with -np 1
    context_window: 4096
    named_tool_choice: false          # it takes tool_choice as a string only
    max_completion_tokens: 400
  - name: llama-cpp-python            # its server enforces a named tool choice by grammar
    base_url: http://127.0.0.1:{llama_python}/v1
    max_concurrency: 1                # one model, one request at a time
    context_window: 4096
    token_limit_parameter: max_tokens # it ignores max_completion_tokens
    max_completion_tokens: 400
  - name: llama-cpp-python-tagged     # the same server; this server parses the tool calls
    base_url: http://127.0.0.1:{llama_python}/v1
    max_concurrency: 1
    context_window: 4096
    token_limit_parameter: max_tokens
    tool_calling: tagged
    max_completion_tokens: 400
models:
  - name: gpt-4o
    aliases: [gpt-4o-mini-2024-07-18]
    backend: llama-server
    model: smollm2
  - name: gpt-4o-mini
    backend: llama-cpp-python
    model: smollm2
  - name: gpt-4-turbo
    backend: llama-cpp-python-tagged
    model: smollm2
"""


def first_token_ms(client: openai.OpenAI, model: str, prompt: str) -> float:
    """Time to the first content token of a streamed chat completion; the answer is read to
    its end (as a run's is), so each measurement starts with the model idle."""
    started = time.perf_counter()
    first = None
    for chunk in client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": prompt}], stream=True,
            max_tokens=ANSWER_TOKENS, temperature=0):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = (time.perf_counter() - started) * 1000
    if first is None:
        raise RuntimeError(f"no token for {prompt!r}")
    return first


def run_first_delta_ms(client: openai.OpenAI, assistant_id: str, prompt: str) -> float:
    """A streamed run on a new thread holding only `prompt`: the backend is sent the same
    messages as a direct request (the assistant has no instructions)."""
    thread = client.beta.threads.create(messages=[{"role": "user", "content": prompt}])
    started = time.perf_counter()
    with client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id,
                                         stream=True, temperature=0,
                                         max_completion_tokens=ANSWER_TOKENS) as stream:
        first = None
        for event in stream:  # to its end, as the direct answer is read
            if first is None and event.event == "thread.message.delta":
                first = (time.perf_counter() - started) * 1000
    if first is None:
        raise RuntimeError(f"no delta for {prompt!r}")
    return first


def http_first_token_ms(http: httpx.Client, prompt: str) -> float:
    """The same, over plain HTTP: the time to the first `data:` line with content, without
    the SDK's parsing of each chunk."""
    body = {"model": "smollm2", "messages": [{"role": "user", "content": prompt}],
            "stream": True, "max_tokens": ANSWER_TOKENS, "temperature": 0}
    started = time.perf_counter()
    first = None
    with http.stream("POST", "/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if first is None and line.startswith("data:") and '"content":"' in \
                    line.replace(" ", "") and '"content":""' not in line.replace(" ", ""):
                first = (time.perf_counter() - started) * 1000
    if first is None:
        raise RuntimeError(f"no token for {prompt!r}")
    return first


def http_run_first_delta_ms(http: httpx.Client, assistant_id: str, prompt: str) -> float:
    """A streamed run over plain HTTP: the time to its first `thread.message.delta` line,
    without the SDK's parsing of the six events before it."""
    thread = http.post("/threads", json={"messages": [{"role": "user", "content": prompt}]})
    body = {"assistant_id": assistant_id, "stream": True, "temperature": 0,
            "max_completion_tokens": ANSWER_TOKENS}
    started = time.perf_counter()
    first = None
    with http.stream("POST", f"/threads/{thread.json()['id']}/runs", json=body) as response:
        for line in response.iter_lines():
            if first is None and line == "event: thread.message.delta":
                first = (time.perf_counter() - started) * 1000
    if first is None:
        raise RuntimeError(f"no delta for {prompt!r}")
    return first


def paired(rounds: int, direct: Any, through: Any) -> dict[str, float]:
    """Alternated pairs on the same prompts; the median of their differences."""
    pairs = []
    for index in range(rounds):
        # The same prompt on both sides, each made unique by its number so that neither finds
        # it in the model server's prompt cache from the other's request.
        prompt = PROMPTS[index % len(PROMPTS)]
        first, second = (direct, through) if index % 2 else (through, direct)
        a, b = first(f"({2 * index}) {prompt}"), second(f"({2 * index + 1}) {prompt}")
        pairs.append((a, b) if first is direct else (b, a))
    directs, throughs = [p[0] for p in pairs], [p[1] for p in pairs]
    added = sorted(t - d for d, t in pairs)
    return {"direct_p50_ms": statistics.median(directs),
            "through_p50_ms": statistics.median(throughs),
            "added_p50_ms": statistics.median(added),
            "added_p25_ms": added[len(added) // 4], "added_p75_ms": added[3 * len(added) // 4],
            "pairs": len(pairs)}


def measure(rounds: int, direct: openai.OpenAI, server: openai.OpenAI) -> dict[str, Any]:
    for prompt in PROMPTS:  # warm the model's cache of the prompt template
        first_token_ms(direct, "smollm2", prompt)
    passed = paired(rounds, lambda p: first_token_ms(direct, "smollm2", p),
                    lambda p: first_token_ms(server, "gpt-4o", p))
    assistant = server.beta.assistants.create(model="gpt-4o")
    streamed = paired(rounds, lambda p: first_token_ms(direct, "smollm2", p),
                      lambda p: run_first_delta_ms(server, assistant.id, p))
    model_http = httpx.Client(base_url=str(direct.base_url), timeout=300)
    server_http = httpx.Client(base_url=str(server.base_url), timeout=300,
                               headers={"OpenAI-Beta": "assistants=v2"})
    raw = paired(rounds, lambda p: http_first_token_ms(model_http, p),
                 lambda p: http_run_first_delta_ms(server_http, assistant.id, p))
    return {"chat_completions": passed, "streamed_run": streamed, "streamed_run_http": raw}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="measured pairs per path")
    parser.add_argument("--timing-only", action="store_true", help="skip the scenarios")
    parser.add_argument("--model-threads", type=int, default=1,
                        help="llama-server's threads (-t): on 2 cores, 1 leaves one to the "
                        "server and the client, as a model on its own machine or GPU would")
    args = parser.parse_args()
    paths = build()
    work = Path(tempfile.mkdtemp(prefix="real-models-"))
    ports = {name: free_port() for name in ("llama_server", "llama_python", "server")}
    processes = [
        start([paths["LLAMA_SERVER"], "-m", paths["LLAMA_MODEL"], "--jinja",
               "--chat-template-file", paths["LLAMA_QWEN_TEMPLATE"], "--alias", "smollm2",
               "-np", "1", "-c", "4096", "-t", str(args.model_threads), "--host", "127.0.0.1",
               "--port", str(ports["llama_server"])], work / "llama-server.log"),
        start([paths["LLAMA_VENV_PYTHON"], "-m", "llama_cpp.server", "--model",
               paths["LLAMA_MODEL"], "--model_alias", "smollm2", "--n_ctx", "4096",
               "--host", "127.0.0.1", "--port", str(ports["llama_python"])],
              work / "llama-cpp-python.log"),
    ]
    try:
        wait_until(f"http://127.0.0.1:{ports['llama_server']}/health")
        wait_until(f"http://127.0.0.1:{ports['llama_python']}/v1/models")
        config = work / "assistants.yaml"
        config.write_text(configuration(ports["llama_server"], ports["llama_python"]))
        env = {**os.environ, "ASSISTANTS_DATA_DIR": str(work / "data"),
               "ASSISTANTS_PORT": str(ports["server"]), "ASSISTANTS_POLL_AFTER_MS": "100"}
        processes.append(start([str(ROOT / ".venv" / "bin" / "assistants-server"), "--config",
                                str(config), "serve"], work / "server.log", env))
        wait_until(f"http://127.0.0.1:{ports['server']}/health")
        server = openai.OpenAI(base_url=f"http://127.0.0.1:{ports['server']}/v1",
                               api_key="anything", max_retries=0, timeout=300)
        direct = openai.OpenAI(base_url=f"http://127.0.0.1:{ports['llama_server']}/v1",
                               api_key="none", max_retries=0, timeout=300)
        results: dict[str, Any] = {"scenarios": [], "machine": os.uname().nodename}
        for model in () if args.timing_only else ("gpt-4o", "gpt-4o-mini", "gpt-4-turbo"):
            for name, scenario in SCENARIOS:
                started = time.monotonic()
                try:
                    ok, detail = scenario(server, model)
                except Exception as exc:  # a report, not a test: say what happened
                    ok, detail = False, f"{type(exc).__name__}: {exc}"
                seconds = time.monotonic() - started
                results["scenarios"].append({"model": model, "scenario": name, "ok": ok,
                                             "detail": detail, "seconds": round(seconds, 1)})
                print(f"[{'ok  ' if ok else 'FAIL'}] {model:12} {name:34} {seconds:5.1f} s  "
                      f"{detail[:150]}", flush=True)
        results["first_token"] = measure(args.rounds, direct, server)
        print(json.dumps(results["first_token"], indent=2))
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"real_models-{int(time.time())}.json"
        out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
        print(f"written to {out}; logs in {work}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
