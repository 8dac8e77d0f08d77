"""Tool calling through the prompt: tools rendered Hermes/Qwen-style, tool-call text parsed
from a stream cut at every possible place, and one corrective retry on a malformed call."""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from assistants_server.backends.chat import (
    BackendError,
    ChatEvent,
    ChatRequest,
    Finish,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistants_server.backends.tagged import (
    TaggedParser,
    ToolCallError,
    stream_tagged,
    tagged_request,
)

NAMES = ["get_weather", "get_time"]
TOOLS = [{"type": "function", "function": {
    "name": name, "description": f"The {name[4:]}.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
    for name in NAMES]
WEATHER = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
TIME = '{"name": "get_time", "arguments": {}}'


def splits(text: str, randoms: int = 40) -> Iterator[list[str]]:
    """The text whole, in single characters, cut once at every place, and cut at random."""
    yield [text]
    yield list(text)
    for at in range(1, len(text)):
        yield [text[:at], text[at:]]
    rng = random.Random(len(text))
    for _ in range(randoms):
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(1, 8))))
        yield [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def parse(chunks: list[str]) -> tuple[str, list[tuple[int, str, Any]]]:
    parser = TaggedParser(NAMES)
    deltas = [d for chunk in chunks for d in parser.feed(chunk)] + parser.close()
    for delta in deltas:
        if isinstance(delta, TextDelta):
            assert delta.text and "<tool_call" not in delta.text
            assert "</tool_call>" not in delta.text
        else:
            assert delta.id is not None and re.fullmatch(r"call_[A-Za-z0-9]{24}", delta.id)
    calls = [(d.index, d.name or "", json.loads(d.arguments))
             for d in deltas if isinstance(d, ToolCallDelta)]
    assert parser.called == bool(calls)
    return "".join(d.text for d in deltas if isinstance(d, TextDelta)), calls


ANSWERS = {
    "text_before_a_call": (f"Let me check.\n<tool_call>\n{WEATHER}\n</tool_call>",
                           "Let me check.", [(0, "get_weather", {"city": "Paris"})]),
    "two_calls_in_one_answer": (f"<tool_call>\n{WEATHER}\n</tool_call>\n<tool_call>{TIME}"
                                "</tool_call>\n", "",
                                [(0, "get_weather", {"city": "Paris"}), (1, "get_time", {})]),
    "an_unclosed_final_block": (f"On it. <tool_call>\n{TIME}\n", "On it.",
                                [(0, "get_time", {})]),
    "a_block_left_open_before_the_next": (f"<tool_call>{TIME}\n<tool_call>{WEATHER}</tool_call>",
                                          "", [(0, "get_time", {}),
                                               (1, "get_weather", {"city": "Paris"})]),
    "a_fenced_call_inside_a_tag": (f"<tool_call>\n```json\n{TIME}\n```\n</tool_call>", "",
                                   [(0, "get_time", {})]),
    "text_after_a_call": (f"<tool_call>{TIME}</tool_call>\n\nThen I will answer.",
                          "Then I will answer.", [(0, "get_time", {})]),
    "bare_json_call": (f"\n{WEATHER}\n", "", [(0, "get_weather", {"city": "Paris"})]),
    "bare_json_list_with_parameters_and_string_arguments": (
        '[{"name": "get_time", "parameters": {}}, '
        '{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}]', "",
        [(0, "get_time", {}), (1, "get_weather", {"city": "Rome"})]),
    "json_fenced_call": (f"```json\n{WEATHER}\n```", "", [(0, "get_weather", {"city": "Paris"})]),
    "json_answer_that_is_not_a_call": ('{"answer": 42, "name": "get_time"}',
                                       '{"answer": 42, "name": "get_time"}', []),
    "json_answer_naming_no_tool": ('  {"name": "Ada", "arguments": {}}\n',
                                   '  {"name": "Ada", "arguments": {}}\n', []),
    "broken_json_answer": ('{"name": "get_time", "argu', '{"name": "get_time", "argu', []),
    "less_than_signs_that_are_not_tags": ("a < b, <tools are great> and <tool_c <tool",
                                          "a < b, <tools are great> and <tool_c <tool", []),
    "plain_text_with_its_whitespace": ("  Hello,\n world  \n", "  Hello,\n world  \n", []),
    "a_code_block_that_is_not_json": ("```python\nprint(1)\n```", "```python\nprint(1)\n```",
                                      []),
    "a_markdown_link_first": ("[docs](https://x.y) say so", "[docs](https://x.y) say so", []),
    "a_stray_closing_tag": ("Done.</tool_call>", "Done.", []),
}


@pytest.mark.parametrize("name", ANSWERS)
def test_answers_parse_the_same_however_the_stream_is_cut(name: str) -> None:
    answer, text, calls = ANSWERS[name]
    for chunks in splits(answer):
        assert parse(chunks) == (text, calls), chunks


BAD = {
    "broken_json_in_a_tag": '<tool_call>{"name": "get_time", "arguments": {</tool_call>',
    "an_unknown_function": '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>',
    "no_name": '<tool_call>{"arguments": {}}</tool_call>',
    "arguments_not_an_object": '<tool_call>{"name": "get_time", "arguments": [1]}</tool_call>',
    "arguments_string_not_json": '<tool_call>{"name": "get_time", "arguments": "x"}</tool_call>',
    "an_unclosed_broken_block": 'Sure <tool_call>\n{"name": "get_time", "arguments": {',
    "an_empty_block": "<tool_call>\n</tool_call>",
    "a_bare_call_with_bad_arguments": '{"name": "get_weather", "arguments": 3}',
}


@pytest.mark.parametrize("name", BAD)
def test_a_malformed_call_raises_tool_call_error_however_the_stream_is_cut(name: str) -> None:
    for chunks in splits(BAD[name], randoms=10):
        with pytest.raises(ToolCallError) as raised:
            parse(chunks)
        assert raised.value.message and raised.value.raw_text


def test_text_is_relayed_as_soon_as_it_cannot_be_a_tag() -> None:
    parser = TaggedParser(NAMES)
    assert parser.feed("Sure, ") == [TextDelta("Sure,")]
    assert parser.feed("a <tool_") == [TextDelta(" a")]
    assert parser.feed("box") == [TextDelta(" <tool_box")]
    assert parser.feed(" <tool_") == []
    assert parser.feed("call>") == []
    assert not parser.called
    deltas = parser.feed(TIME + "</tool_call>")
    assert [(d.index, d.name, d.arguments) for d in deltas if isinstance(d, ToolCallDelta)] == [
        (0, "get_time", "{}")]
    assert parser.called and parser.close() == []


def test_each_call_gets_its_own_id() -> None:
    parser = TaggedParser(NAMES)
    deltas = parser.feed(f"<tool_call>{TIME}</tool_call>" * 3) + parser.close()
    assert len({d.id for d in deltas if isinstance(d, ToolCallDelta)}) == 3


# tagged_request


def request(**changes: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=[{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": "Weather?"}],
                       tools=copy.deepcopy(TOOLS), **changes)


def test_tools_are_described_in_the_system_prompt_and_removed_from_the_request() -> None:
    original = request(tool_choice="auto", parallel_tool_calls=True)
    before = copy.deepcopy(original.messages)
    tagged = tagged_request(original)
    assert original.messages == before and original.tools == TOOLS
    assert (tagged.tools, tagged.tool_choice, tagged.parallel_tool_calls) == ([], None, None)
    system = tagged.messages[0]["content"]
    assert system.startswith("Be brief.\n\n# Tools\n")
    assert "<tools>\n" + "\n".join(json.dumps(t) for t in TOOLS) + "\n</tools>" in system
    assert ('<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
            "</tool_call>") in system
    assert "one <tool_call> block for each" in system and "only if it is needed" in system
    assert tagged.messages[1:] == original.messages[1:]


def test_a_system_message_is_inserted_when_there_is_none() -> None:
    tagged = tagged_request(request().replace(messages=[{"role": "user", "content": "Hi"}]))
    assert tagged.messages[0]["role"] == "system"
    assert tagged.messages[0]["content"].startswith("# Tools\n")
    assert tagged.messages[1] == {"role": "user", "content": "Hi"}


@pytest.mark.parametrize(("choice", "sentence"), [
    ("required", "You must call at least one function"),
    ({"type": "function", "function": {"name": "get_time"}}, "You must call the function get_time"),
    ("none", "Do not call any function"),
    ("auto", "only if it is needed"),
    (None, "only if it is needed"),
])
def test_tool_choice_becomes_an_instruction(choice: Any, sentence: str) -> None:
    assert sentence in tagged_request(request(tool_choice=choice)).messages[0]["content"]


def test_parallel_tool_calls_false_asks_for_one_call() -> None:
    system = tagged_request(request(parallel_tool_calls=False)).messages[0]["content"]
    assert "Call at most one function per answer." in system
    assert "one <tool_call> block for each" not in system


def test_earlier_calls_and_results_are_written_as_tags() -> None:
    calls = [{"id": "call_1", "type": "function",
              "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
             {"id": "call_2", "type": "function", "function": {"name": "get_time",
                                                               "arguments": "{}"}}]
    history = [{"role": "user", "content": "Weather and time?"},
               {"role": "assistant", "content": None, "tool_calls": calls},
               {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
               {"role": "tool", "tool_call_id": "call_2", "content": "9:00"},
               {"role": "assistant", "content": "Checking.", "tool_calls": calls[1:]},
               {"role": "tool", "tool_call_id": "call_2", "content": "9:01"}]
    tagged = tagged_request(request().replace(messages=copy.deepcopy(history)))
    assert tagged.messages[1:] == [
        history[0],
        {"role": "assistant", "content": f"<tool_call>\n{WEATHER}\n</tool_call>\n"
                                         f"<tool_call>\n{TIME}\n</tool_call>"},
        {"role": "user", "content": "<tool_response>\nSunny\n</tool_response>\n"
                                    "<tool_response>\n9:00\n</tool_response>"},
        {"role": "assistant", "content": f"Checking.\n<tool_call>\n{TIME}\n</tool_call>"},
        {"role": "user", "content": "<tool_response>\n9:01\n</tool_response>"},
    ]
    # What the model is shown of its earlier calls is what it is asked to write.
    assert parse([tagged.messages[2]["content"]])[1] == [
        (0, "get_weather", {"city": "Paris"}), (1, "get_time", {})]


def test_a_request_without_tools_is_left_alone() -> None:
    plain = ChatRequest(model="m", messages=[{"role": "user", "content": "Hi"}])
    assert tagged_request(plain) is plain


# stream_tagged


class FakeSend:
    """A backend that streams scripted answers in 5-character deltas, recording requests."""

    def __init__(self, *answers: str, finish: bool = True) -> None:
        self.answers = list(answers)
        self.finish = finish
        self.requests: list[ChatRequest] = []
        self.closed = 0

    async def __call__(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        self.requests.append(request)
        answer = self.answers.pop(0)
        try:
            for at in range(0, len(answer), 5):
                yield TextDelta(answer[at:at + 5])
            yield Usage(100, 10)
            if self.finish:
                yield Finish("stop")
        finally:
            self.closed += 1


async def collect(send: FakeSend, chat: ChatRequest) -> list[ChatEvent]:
    return [event async for event in stream_tagged(send, chat)]


def text_of(events: list[ChatEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_a_tagged_call_streams_as_a_tool_call_and_finishes_with_tool_calls() -> None:
    send = FakeSend(f"One moment.\n<tool_call>\n{WEATHER}\n</tool_call>")
    events = await collect(send, request())
    assert text_of(events) == "One moment."
    [call] = [e for e in events if isinstance(e, ToolCallDelta)]
    assert (call.index, call.name, json.loads(call.arguments)) == (0, "get_weather",
                                                                   {"city": "Paris"})
    assert events[-2:] == [Usage(100, 10), Finish("tool_calls")]
    assert send.requests == [tagged_request(request())]


async def test_a_call_left_open_by_a_stream_without_finish_is_still_made() -> None:
    events = await collect(FakeSend(f"<tool_call>\n{TIME}", finish=False), request())
    assert [(type(e), getattr(e, "name", None)) for e in events] == [
        (Usage, None), (ToolCallDelta, "get_time")]


async def test_an_answer_without_calls_keeps_its_finish_reason() -> None:
    events = await collect(FakeSend("It is sunny < 30 degrees."), request())
    assert text_of(events) == "It is sunny < 30 degrees."
    assert events[-1] == Finish("stop")


async def test_a_malformed_call_is_corrected_once() -> None:
    bad = '<tool_call>{"name": "get_weather", "arguments": {"city": Paris}}</tool_call>'
    send = FakeSend("Checking. " + bad, f"<tool_call>{WEATHER}</tool_call>")
    events = await collect(send, request())
    assert len(send.requests) == 2 and send.closed == 2
    assistant, correction = send.requests[1].messages[-2:]
    assert assistant == {"role": "assistant", "content": "Checking. " + bad}
    assert correction["role"] == "user"
    assert correction["content"].startswith("Your tool call was not valid: the JSON in a "
                                            "<tool_call> block does not parse")
    assert correction["content"].endswith('holding valid JSON with "name" and "arguments", '
                                          'and no other text.')
    assert send.requests[1].messages[:-2] == send.requests[0].messages
    assert text_of(events) == "Checking."  # what was shown before the bad call stays
    assert [e.name for e in events if isinstance(e, ToolCallDelta)] == ["get_weather"]
    assert events[-1] == Finish("tool_calls")


async def test_the_retry_counts_the_tokens_the_failed_attempt_used() -> None:
    send = FakeSend('<tool_call>{"name": "nope"}', f"<tool_call>{TIME}")
    events = await collect(send, request())
    assert "there is no function named" in send.requests[1].messages[-1]["content"]
    assert [e for e in events if isinstance(e, Usage)][-1] == Usage(200, 20)
    assert events[-1] == Finish("tool_calls")


async def test_a_second_malformed_call_fails_the_run() -> None:
    send = FakeSend('<tool_call>{"name": "get_time", "arguments": 1}</tool_call>',
                    '<tool_call>{"name": "get_time", "arguments": 2}</tool_call>')
    with pytest.raises(BackendError) as raised:
        await collect(send, request())
    assert raised.value.code == "server_error" and len(send.requests) == 2
    assert raised.value.message.startswith("The model produced invalid tool arguments twice: ")
    assert raised.value.message.endswith('Raw output: <tool_call>{"name": "get_time", '
                                         '"arguments": 2}</tool_call>')


async def test_without_tools_the_request_and_stream_pass_through() -> None:
    plain = ChatRequest(model="m", messages=[{"role": "user", "content": "Hi"}])
    send = FakeSend("<tool_call> is just text here")
    events = await collect(send, plain)
    assert send.requests[0] is plain
    assert text_of(events) == "<tool_call> is just text here"
