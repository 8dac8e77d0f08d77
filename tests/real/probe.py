"""Probe an OpenAI-compatible Chat Completions server and print what it really does.

Usage: python tests/real/probe.py http://127.0.0.1:8091 [label]

Prints short snippets of raw responses (HTTP status, JSON bodies, SSE lines) for:
models, plain streaming, tools (auto/required, streamed and not), max_tokens vs
max_completion_tokens, tokenizer/template endpoints, embeddings, concurrency.
Not collected by pytest (no test_ prefix); it is a manual tool for checking a backend.
"""

import json
import sys
import threading
import time

import httpx

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8091"
LABEL = sys.argv[2] if len(sys.argv) > 2 else BASE
MODEL = "local"
TIMEOUT = httpx.Timeout(300.0)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}
WEATHER_MSGS = [
    {"role": "user", "content": "What is the weather in Paris? Use the get_weather tool."}
]


def short(obj, n=600):
    s = obj if isinstance(obj, str) else json.dumps(obj)
    return s if len(s) <= n else s[:n] + f"...(+{len(s) - n} chars)"


def post(path, body):
    t = time.time()
    r = httpx.post(BASE + path, json=body, timeout=TIMEOUT)
    return r, time.time() - t


def get(path):
    return httpx.get(BASE + path, timeout=TIMEOUT)


def stream(path, body, keep_all=False):
    """Return (status, lines) of the raw SSE stream (data lines only, plus anything odd)."""
    lines = []
    with httpx.stream("POST", BASE + path, json=body, timeout=TIMEOUT) as r:
        status = r.status_code
        if status != 200:
            return status, [r.read().decode()]
        for line in r.iter_lines():
            if line.strip():
                lines.append(line)
    return status, lines


def show_stream(title, body):
    print(f"\n## {title}")
    try:
        status, lines = stream("/v1/chat/completions", body)
    except Exception as e:  # noqa: BLE001 - report whatever breaks
        print(f"EXCEPTION {type(e).__name__}: {e}")
        return
    print(f"HTTP {status}, {len(lines)} non-empty lines")
    picks = lines if len(lines) <= 8 else lines[:4] + ["..."] + lines[-4:]
    for ln in picks:
        print("  " + short(ln, 500))
    # summarise tool-call deltas and finish reasons
    finish, tc_deltas, content = [], 0, ""
    for ln in lines:
        if not ln.startswith("data: ") or ln == "data: [DONE]":
            continue
        try:
            ch = json.loads(ln[6:])
        except ValueError:
            continue
        for c in ch.get("choices", []):
            d = c.get("delta", {})
            if d.get("tool_calls"):
                tc_deltas += 1
            content += d.get("content") or ""
            if c.get("finish_reason"):
                finish.append(c["finish_reason"])
    print(
        f"  => tool_call deltas={tc_deltas} finish_reasons={finish} "
        f"ends_with_DONE={bool(lines) and lines[-1] == 'data: [DONE]'} "
        f"content={short(content, 300)!r}"
    )


def show_post(title, path, body, n=700):
    print(f"\n## {title}")
    try:
        r, dt = post(path, body)
    except Exception as e:  # noqa: BLE001
        print(f"EXCEPTION {type(e).__name__}: {e}")
        return None
    print(f"HTTP {r.status_code} in {dt:.1f}s: {short(r.text, n)}")
    try:
        return r.json()
    except ValueError:
        return None


def main():
    print(f"# probe {LABEL} ({BASE})")
    for path in ["/v1/models", "/health", "/props", "/slots"]:
        try:
            r = get(path)
            print(f"\n## GET {path}\nHTTP {r.status_code}: {short(r.text, 500)}")
        except Exception as e:  # noqa: BLE001
            print(f"\n## GET {path}\nEXCEPTION {e}")

    show_stream(
        "plain streamed chat",
        {
            "model": MODEL,
            "stream": True,
            "max_tokens": 24,
            "messages": [{"role": "user", "content": "Say hello in five words."}],
        },
    )
    show_stream(
        "plain streamed chat + stream_options.include_usage",
        {
            "model": MODEL,
            "stream": True,
            "max_tokens": 8,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Say hi."}],
        },
    )

    for choice in ["auto", "required"]:
        show_post(
            f"non-streamed tools, tool_choice={choice}",
            "/v1/chat/completions",
            {
                "model": MODEL,
                "messages": WEATHER_MSGS,
                "tools": [WEATHER_TOOL],
                "tool_choice": choice,
                "max_tokens": 128,
            },
        )
        show_stream(
            f"streamed tools, tool_choice={choice}",
            {
                "model": MODEL,
                "messages": WEATHER_MSGS,
                "tools": [WEATHER_TOOL],
                "tool_choice": choice,
                "max_tokens": 128,
                "stream": True,
            },
        )
    show_post(
        "non-streamed tools, tool_choice=named function",
        "/v1/chat/completions",
        {
            "model": MODEL,
            "messages": WEATHER_MSGS,
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "max_tokens": 128,
        },
    )
    show_stream(
        "streamed tools, tool_choice=named function",
        {
            "model": MODEL,
            "messages": WEATHER_MSGS,
            "tools": [WEATHER_TOOL],
            "stream": True,
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "max_tokens": 128,
        },
    )
    # follow-up turn carrying a tool result
    show_post(
        "tool result round trip (assistant tool_calls + tool message)",
        "/v1/chat/completions",
        {
            "model": MODEL,
            "max_tokens": 48,
            "tools": [WEATHER_TOOL],
            "messages": WEATHER_MSGS
            + [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {
                    "role": "tool",
                    "tool_call_id": "call_1",
                    "content": '{"temp_c": 21, "sky": "sunny"}',
                },
            ],
        },
    )

    long_prompt = [{"role": "user", "content": "Write a long story about a cat."}]
    for key in ["max_tokens", "max_completion_tokens"]:
        j = show_post(
            f"{key}=5",
            "/v1/chat/completions",
            {"model": MODEL, "messages": long_prompt, key: 5},
            n=300,
        )
        if j and "choices" in j:
            print(
                f"  => finish_reason={j['choices'][0].get('finish_reason')} usage={j.get('usage')}"
            )

    show_post("POST /tokenize", "/tokenize", {"content": "Hello world"})
    show_post("POST /detokenize", "/detokenize", {"tokens": [19556, 905]})
    show_post("POST /apply-template", "/apply-template", {"messages": WEATHER_MSGS})
    show_post(
        "POST /extras/tokenize (llama-cpp-python)", "/extras/tokenize", {"input": "Hello world"}
    )
    show_post("POST /v1/embeddings", "/v1/embeddings", {"model": MODEL, "input": "hello"}, n=200)

    print("\n## concurrency: 3 requests at once (max_tokens=48)")
    spans = []

    def one(i):
        t0 = time.time()
        try:
            r = httpx.post(
                BASE + "/v1/chat/completions",
                timeout=TIMEOUT,
                json={
                    "model": MODEL,
                    "max_tokens": 48,
                    "temperature": 0,
                    "messages": [{"role": "user", "content": f"Count from 1 to 40. ({i})"}],
                },
            )
            st = r.status_code
        except Exception as e:  # noqa: BLE001
            st = repr(e)
        spans.append((i, round(t0 - T0, 2), round(time.time() - T0, 2), st))

    T0 = time.time()
    ts = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
        time.sleep(0.05)
    for t in ts:
        t.join()
    for s in sorted(spans):
        print(f"  req{s[0]} start={s[1]}s end={s[2]}s status={s[3]}")


if __name__ == "__main__":
    main()
