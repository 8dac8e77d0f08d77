"""Tool calling through the prompt, for backends that do not parse tool calls themselves
("tool_calling: tagged"): the tools are described in the system prompt (`tagged_prompt.py`),
and the model's `<tool_call>{...}</tool_call>` text is parsed as it streams into the same
`ToolCallDelta`s a native backend sends, with one corrective retry on a malformed call.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection
from typing import Any, Literal

from assistants_server.backends.chat import (
    BackendError,
    ChatEvent,
    ChatRequest,
    Finish,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistants_server.backends.tagged_prompt import CLOSE, OPEN, tagged_request
from assistants_server.kit.ids import new_id

Parsed = list[TextDelta | ToolCallDelta]
Send = Callable[[ChatRequest], AsyncIterator[ChatEvent]]

_CORRECTION = (
    "Your tool call was not valid: {reason}. Reply with only the corrected calls, each as "
    '<tool_call>{{...}}</tool_call> holding valid JSON with "name" and "arguments", and no '
    "other text."
)
# An answer that is a bare JSON call: `{`, or `[{`, optionally inside a ```json fence.
_BARE = re.compile(r"\s*(?:```(?:json)?\s*)?(?:\[\s*)?\{", re.I)
_BARE_PREFIX = re.compile(r"\s*(?:`{1,2}|```(?:j|js|jso|json)?\s*(?:\[\s*)?|\[\s*)?", re.I)
_FENCED = re.compile(r"\s*```(?:json)?(.*?)(?:```)?\s*", re.I | re.S)
_CALL_KEYS = {"name", "arguments", "parameters"}


class ToolCallError(Exception):
    """The model wrote a tool call that cannot be used; `raw_text` is what it wrote."""

    def __init__(self, message: str, raw_text: str) -> None:
        super().__init__(message)
        self.message = message
        self.raw_text = raw_text


class TaggedParser:
    """Turns a model's streamed text into text and tool-call deltas. Text is relayed as soon
    as it cannot be the start of a tag; whitespace is held back so that the whitespace
    around and between calls can be dropped."""

    def __init__(self, tool_names: Collection[str]) -> None:
        self._names = frozenset(tool_names)
        self._mode: Literal["start", "text", "tag", "bare"] = "start"
        # start/bare: the whole answer so far; text: a tail that may begin a tag; tag: the body.
        self._buffer = ""
        self._space = ""
        self._after_call = False
        self._calls = 0
        self._out: Parsed = []

    @property
    def called(self) -> bool:
        return self._calls > 0

    def feed(self, text: str) -> Parsed:
        self._buffer += text
        if self._mode == "start":
            if _BARE.match(self._buffer):
                self._mode = "bare"
            elif not _BARE_PREFIX.fullmatch(self._buffer):
                self._mode = "text"
        if self._mode in ("text", "tag"):
            self._scan()
        return self._take()

    def close(self) -> Parsed:
        """The answer ended: an unclosed call is parsed, a held-back tail relayed."""
        if self._mode == "bare" and not self._close_bare():
            self._mode = "text"  # an answer in JSON (or text with tags after a brace)
            self._scan()
        if self._mode == "tag":
            self._emit(_parse_block(self._buffer, self._names))
        elif self._mode != "bare":
            self._relay(self._buffer)
        self._buffer = ""
        if self._space and not self._after_call:
            self._out.append(TextDelta(self._space))
        self._space = ""
        return self._take()

    def _scan(self) -> None:
        while True:
            found = [(i, tag) for tag in (OPEN, CLOSE) if (i := self._buffer.find(tag)) >= 0]
            if not found:
                break
            at, tag = min(found)
            before, self._buffer = self._buffer[:at], self._buffer[at + len(tag):]
            if self._mode == "tag":
                # A new <tool_call> also ends an unclosed one: models forget the closing tag.
                self._emit(_parse_block(before, self._names))
            else:
                self._relay(before)
                self._space = ""  # whitespace before a tag is dropped, as is a stray </tool_call>
            self._mode = "tag" if tag == OPEN else "text"
        if self._mode == "text":
            keep = _tag_prefix_length(self._buffer)
            self._relay(self._buffer[:len(self._buffer) - keep])
            self._buffer = self._buffer[len(self._buffer) - keep:]

    def _relay(self, text: str) -> None:
        held = self._space + text
        body = held.rstrip()
        self._space = held[len(body):]
        if self._after_call:
            body = body.lstrip()
        if body:
            self._out.append(TextDelta(body))
            self._after_call = False

    def _close_bare(self) -> bool:
        """Emit the answer's calls if it is nothing but bare JSON calls."""
        values = _json_values(_unfenced(self._buffer))
        objects = [v for value in values or [] for v in (value if isinstance(value, list)
                                                          else [value])]
        # Only a call's own keys: {"name": ..., "results": [...]} is an answer, not a call.
        if not values or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                 and o["name"] in self._names and set(o) <= _CALL_KEYS
                                 for o in objects):
            return False
        self._emit([_check_call(o, self._names, self._buffer) for o in objects])
        return True

    def _emit(self, calls: list[tuple[str, str]]) -> None:
        for name, arguments in calls:
            self._out.append(ToolCallDelta(self._calls, new_id("call_"), name, arguments))
            self._calls += 1
        self._after_call = True

    def _take(self) -> Parsed:
        out, self._out = self._out, []
        return out


def _tag_prefix_length(text: str) -> int:
    """How many characters at the end of `text` could still become a tag."""
    for k in range(min(len(text), len(CLOSE) - 1), 0, -1):
        if OPEN.startswith(text[-k:]) or CLOSE.startswith(text[-k:]):
            return k
    return 0


def _unfenced(text: str) -> str:
    fenced = _FENCED.fullmatch(text) if "```" in text else None
    return fenced.group(1) if fenced else text


def _json_values(text: str) -> list[Any] | None:
    """The JSON values `text` holds one after another, or None if it holds anything else."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while (at := len(text) - len(text[at:].lstrip())) < len(text):
        try:
            value, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return None
        values.append(value)
    return values


def _parse_block(body: str, names: frozenset[str]) -> list[tuple[str, str]]:
    text = _unfenced(body).strip()
    if not text:
        raise ToolCallError("a <tool_call> block was empty", body)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ToolCallError(f"the JSON in a <tool_call> block does not parse ({error.msg}, "
                            f"at character {error.pos})", body) from None
    return [_check_call(v, names, body) for v in (value if isinstance(value, list) else [value])]


def _check_call(value: Any, names: frozenset[str], raw: str) -> tuple[str, str]:
    """(name, arguments as a JSON string) of a call, or the reason it cannot be made."""
    if not isinstance(value, dict):
        raise ToolCallError("a tool call must be a JSON object", raw)
    name = value.get("name")
    if not isinstance(name, str) or not name:
        raise ToolCallError('the tool call has no "name"', raw)
    if name not in names:
        raise ToolCallError(f"there is no function named {json.dumps(name)} (the functions "
                            f"are {', '.join(sorted(names))})", raw)
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):
            if isinstance(json.loads(arguments), dict):
                return name, arguments
    elif isinstance(arguments, dict):
        return name, json.dumps(arguments, ensure_ascii=False)
    raise ToolCallError(f'the "arguments" of {name} must be a JSON object', raw)


async def stream_tagged(send: Send, request: ChatRequest) -> AsyncIterator[ChatEvent]:
    """`send` the request with tools in the prompt and stream the answer with its calls
    parsed; a malformed call is corrected once, then fails as a BackendError."""
    if not request.tools:
        async for event in send(request):
            yield event
        return
    names = [t["function"]["name"] for t in request.tools if t.get("type") == "function"]
    tagged, spent = tagged_request(request), Usage(0, 0)
    for retry in (False, True):
        raw: list[str] = []
        used = spent
        try:
            async for event in _parsed(send, tagged, TaggedParser(names), raw):
                if isinstance(event, Usage):  # a turn keeps the last Usage: add a failed try's
                    event = used = Usage(spent.prompt_tokens + event.prompt_tokens,
                                         spent.completion_tokens + event.completion_tokens)
                yield event
            return
        except ToolCallError as error:
            if retry:
                raise BackendError("server_error", "The model produced invalid tool arguments "
                                   f"twice: {error.message}. Raw output: {''.join(raw)[:300]}"
                                   ) from error
            tagged = tagged.replace(messages=[
                *tagged.messages, {"role": "assistant", "content": "".join(raw)},
                {"role": "user", "content": _CORRECTION.format(reason=error.message)}])
            spent = used


async def _parsed(send: Send, request: ChatRequest, parser: TaggedParser,
                  raw: list[str]) -> AsyncIterator[ChatEvent]:
    """One completion with its text through `parser`; `raw` keeps the model's own text."""
    events, closed = send(request), False
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                raw.append(event.text)
                for parsed in parser.feed(event.text):
                    yield parsed
            elif isinstance(event, Finish):
                closed = True
                for parsed in parser.close():
                    yield parsed
                yield Finish("tool_calls") if parser.called else event
            else:
                yield event
    finally:
        if isinstance(events, AsyncGenerator):  # release the connection on an early exit
            await events.aclose()
    if not closed:
        for parsed in parser.close():
            yield parsed
