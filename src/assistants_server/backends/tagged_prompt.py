"""The request a `tool_calling: tagged` backend is sent: the tools described in the system
prompt in the Hermes/Qwen2.5 style, with the call format and the `tool_choice`, and earlier
calls and their outputs rewritten as `<tool_call>` / `<tool_response>` text, since such a
backend takes neither `tools` nor `tool` messages.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from assistants_server.backends.chat import ChatRequest

OPEN, CLOSE = "<tool_call>", "</tool_call>"


def tagged_request(request: ChatRequest) -> ChatRequest:
    """The request for a backend without tool calling: tools in the system prompt, earlier
    calls and results written as the tags the model is asked to use."""
    if not request.tools:
        return request
    messages = _rewrite_history(request.messages)
    prompt = _tools_prompt(request)
    at = next((i for i, m in enumerate(messages) if m.get("role") == "system"), None)
    if at is None:
        messages.insert(0, {"role": "system", "content": prompt})
    else:
        content = messages[at].get("content")
        joined = ([*content, {"type": "text", "text": "\n\n" + prompt}]
                  if isinstance(content, list) else f"{content}\n\n{prompt}" if content else prompt)
        messages[at] = messages[at] | {"content": joined}
    return request.replace(messages=messages, tools=[], tool_choice=None,
                           parallel_tool_calls=None)


def _tools_prompt(request: ChatRequest) -> str:
    several = request.parallel_tool_calls is not False
    lines = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in request.tools)
    return (
        "# Tools\n\nYou may call " + ("one or more functions" if several else "one function")
        + " to assist with the user query.\n\nYou are provided with function signatures "
        f"within <tools></tools> XML tags:\n<tools>\n{lines}\n</tools>\n\nFor each function "
        "call, return a json object with function name and arguments within <tool_call>"
        '</tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
        '<args-json-object>}\n</tool_call>\n\n'
        + ("To call several functions at once, write one <tool_call> block for each. "
           if several else "Call at most one function per answer. ")
        + _choice_sentence(request.tool_choice)
    )


def _choice_sentence(choice: Any) -> str:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return f"You must call the function {choice['function']['name']} now."
    return {"required": "You must call at least one function now.",
            "none": "Do not call any function now; answer directly."}.get(
        str(choice), "Call a function only if it is needed; otherwise answer directly.")


def _rewrite_history(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after_tool = False
    for message in messages:
        if message.get("role") == "tool":
            block = f"<tool_response>\n{_text_of(message.get('content'))}\n</tool_response>"
            if after_tool:  # results of one round go back together, as Qwen's template does
                out[-1] = out[-1] | {"content": out[-1]["content"] + "\n" + block}
            else:
                out.append({"role": "user", "content": block})
        elif message.get("role") == "assistant" and message.get("tool_calls"):
            blocks = [_call_block(call) for call in message["tool_calls"]]
            text = _text_of(message.get("content"))
            rest = {k: v for k, v in message.items() if k != "tool_calls"}
            out.append(rest | {"content": "\n".join(([text] if text else []) + blocks)})
        else:
            out.append(message)
        after_tool = message.get("role") == "tool"
    return out


def _call_block(call: dict[str, Any]) -> str:
    function = call.get("function") or {}
    arguments: Any = function.get("arguments") or "{}"
    with contextlib.suppress(ValueError):  # else shown as the string the model wrote
        arguments = json.loads(arguments)
    call_json = json.dumps({"name": function.get("name"), "arguments": arguments},
                           ensure_ascii=False)
    return f"{OPEN}\n{call_json}\n{CLOSE}"


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)
