"""The framing between the server and a session's worker: each message is a 4-byte big-endian
length and that many bytes of a JSON object. Standard library only, no asyncio: the worker
imports it inside the sandbox, where every import is paid on each cold start."""

from __future__ import annotations

import json
import os
import struct

TYPE_CHECKING = False  # typing is an import every cold start would pay for
if TYPE_CHECKING:
    from typing import Any

HEADER = struct.Struct("!I")
MAX_FRAME = 64 << 20
"""Larger frames are refused: a reply carries at most the truncated logs and a few PNGs."""


# What one reply may hold; the server re-checks, since user code could forge a reply.
MAX_IMAGES = 16
MAX_FILES_REPORTED = 50
MAX_ERROR_CHARS = 4000


class ProtocolError(Exception):
    """A frame was malformed, too large, or cut short."""


def encode(message: dict[str, Any]) -> bytes:
    payload = json.dumps(message, separators=(",", ":")).encode()
    if len(payload) > MAX_FRAME:
        raise ProtocolError(f"message of {len(payload)} bytes exceeds {MAX_FRAME}")
    return HEADER.pack(len(payload)) + payload


def frame_length(header: bytes) -> int:
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes exceeds {MAX_FRAME}")
    return int(length)


def decode(payload: bytes) -> dict[str, Any]:
    try:
        message = json.loads(payload)
    except ValueError as exc:
        raise ProtocolError(f"frame is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("frame is not a JSON object")
    return message


def send(fd: int, message: dict[str, Any]) -> None:
    """Blocking write of one frame (the worker's side)."""
    data = memoryview(encode(message))
    while data:
        data = data[os.write(fd, data):]


def receive(fd: int) -> dict[str, Any] | None:
    """Blocking read of one frame (the worker's side); None at end of input."""
    header = _read_exactly(fd, HEADER.size)
    if header is None:
        return None
    payload = _read_exactly(fd, frame_length(header))
    if payload is None:
        raise ProtocolError("input ended inside a frame")
    return decode(payload)


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    missing = size
    while missing:
        chunk = os.read(fd, min(missing, 1 << 20))
        if not chunk:
            if missing == size:
                return None
            raise ProtocolError("input ended inside a frame")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def truncate(text: str, limit: int, omitted: int = 0) -> str:
    """Keep three quarters of `limit` from the head and one quarter from the tail, around a
    note saying how much was left out (`omitted` counts what the caller already dropped)."""
    if len(text) <= limit and not omitted:
        return text
    head, tail = limit * 3 // 4, limit // 4
    omitted += max(0, len(text) - head - tail)
    return (f"{text[:head]}\n[... output truncated: {omitted:,} characters left out ...]\n"
            f"{text[len(text) - tail:] if tail else ''}")
