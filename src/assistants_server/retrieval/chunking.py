"""Text cut into overlapping windows of cl100k_base tokens, and the chunking_strategy that sizes
them, validated by the rules of OpenAI's hosted vector stores.

The text is encoded once; window edges are token offsets mapped to byte offsets of the UTF-8
text, so a chunk is a slice of the original bytes. Byte-level BPE can end a token inside a
multi-byte character, so window edges move to the nearest token boundary that is also a
character boundary: a chunk never carries half a character (no U+FFFD) and never loses one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from assistants_server.tokens import encoding

DEFAULT_MAX_CHUNK_SIZE_TOKENS = 800
DEFAULT_CHUNK_OVERLAP_TOKENS = 400
MIN_CHUNK_SIZE_TOKENS = 100
MAX_CHUNK_SIZE_TOKENS = 4096

_Offsets = npt.NDArray[np.int64]


@dataclass(slots=True, frozen=True)
class Chunk:
    text: str
    tokens: int


def chunk_text(
    text: str,
    max_chunk_size_tokens: int = DEFAULT_MAX_CHUNK_SIZE_TOKENS,
    chunk_overlap_tokens: int = DEFAULT_CHUNK_OVERLAP_TOKENS,
) -> list[Chunk]:
    """Windows of at most `max_chunk_size_tokens` tokens, each starting `chunk_overlap_tokens`
    before the previous one ended; the last ends at the end of the text. A window is longer
    than the maximum only if one character alone takes more tokens than that."""
    if max_chunk_size_tokens < 1 or not 0 <= chunk_overlap_tokens < max_chunk_size_tokens:
        raise ValueError(
            "chunk_text needs max_chunk_size_tokens >= 1 and "
            "0 <= chunk_overlap_tokens < max_chunk_size_tokens"
        )
    text = _without_lone_surrogates(text)
    if not text:
        return []
    data = text.encode("utf-8")
    offsets = _byte_offsets(_encode(text), len(data))
    bounds = _character_bounds(data, offsets)
    windows = _windows(bounds, max_chunk_size_tokens, chunk_overlap_tokens)
    return [
        Chunk(data[offsets[start] : offsets[end]].decode("utf-8"), end - start)
        for start, end in windows
    ]


def _without_lone_surrogates(text: str) -> str:
    # What tiktoken does with them too, so tokens and bytes describe the same text.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _encode(text: str) -> npt.NDArray[np.uint32]:
    # Same tokens as encode_ordinary (no special-token handling: "<|endoftext|>" is plain
    # text here), but straight into an array: a list of 2.5M ints for 10 MB costs ~90 MB.
    return encoding().encode_to_numpy(text, allowed_special=set(), disallowed_special=())


@lru_cache(maxsize=1)
def _token_lengths() -> npt.NDArray[np.int64]:
    """Byte length of every token id; ids that are gaps in the vocabulary have length 0."""
    tokenizer = encoding()
    lengths = np.zeros(tokenizer.n_vocab, dtype=np.int64)
    for token in range(tokenizer.n_vocab):
        try:
            lengths[token] = len(tokenizer.decode_single_token_bytes(token))
        except KeyError:
            continue
    return lengths


def _byte_offsets(tokens: npt.NDArray[np.uint32], size: int) -> _Offsets:
    """offsets[i] is where token i starts in the UTF-8 text; offsets[-1] is its length."""
    offsets = np.zeros(len(tokens) + 1, dtype=np.int64)
    np.cumsum(_token_lengths()[tokens], out=offsets[1:])
    if offsets[-1] != size:
        raise RuntimeError("tokens do not spell the text; the tokenizer and text disagree")
    return offsets


def _character_bounds(data: bytes, offsets: _Offsets) -> _Offsets:
    """Token indices, ascending, where a UTF-8 character starts (and the end of the text):
    the only places a window may begin or end."""
    inner = offsets[1:-1]
    leading = (np.frombuffer(data, dtype=np.uint8)[inner] & 0xC0) != 0x80  # not 0b10xxxxxx
    indices = np.flatnonzero(leading) + 1
    return np.concatenate(([0], indices, [len(offsets) - 1])).astype(np.int64)


def _windows(bounds: _Offsets, size: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) token ranges: each starts after the previous start, at or before the
    previous end (nothing skipped), and ends past the previous end (no window inside another)."""
    total = int(bounds[-1])
    windows: list[tuple[int, int]] = []
    start = end = 0
    while end < total:
        previous_start, previous_end = start, end
        start = _at_or_before(bounds, max(previous_end - overlap, 0)) if windows else 0
        if windows and start <= previous_start:
            start = _after(bounds, previous_start)
        end = _at_or_before(bounds, min(start + size, total))
        if end <= previous_end:
            # No character ends inside this window: take the next one whole, and give up
            # overlap rather than size where that is enough to stay within it.
            end = _after(bounds, previous_end)
            start = max(start, min(_at_or_after(bounds, end - size), previous_end))
        windows.append((start, end))
    return windows


def _at_or_before(bounds: _Offsets, index: int) -> int:
    return int(bounds[np.searchsorted(bounds, index, side="right") - 1])


def _at_or_after(bounds: _Offsets, index: int) -> int:
    return int(bounds[np.searchsorted(bounds, index, side="left")])


def _after(bounds: _Offsets, index: int) -> int:
    return int(bounds[np.searchsorted(bounds, index, side="right")])


def resolve_chunking_strategy(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stored form of a request's chunking_strategy: always `static`, as the hosted service
    reported it (`auto` and absent mean 800/400). Raises ValueError naming the bad field."""
    if value is None:
        return _static(DEFAULT_MAX_CHUNK_SIZE_TOKENS, DEFAULT_CHUNK_OVERLAP_TOKENS)
    if not isinstance(value, Mapping):
        raise ValueError("chunking_strategy must be an object")
    kind = value.get("type")
    if kind == "auto":
        _only_fields(value, {"type"}, "chunking_strategy")
        return _static(DEFAULT_MAX_CHUNK_SIZE_TOKENS, DEFAULT_CHUNK_OVERLAP_TOKENS)
    if kind != "static":
        raise ValueError(f"chunking_strategy.type must be 'auto' or 'static', not {kind!r}")
    _only_fields(value, {"type", "static"}, "chunking_strategy")
    static = value.get("static")
    if not isinstance(static, Mapping):
        raise ValueError("chunking_strategy.static is required when type is 'static'")
    fields = {"max_chunk_size_tokens", "chunk_overlap_tokens"}
    _only_fields(static, fields, "chunking_strategy.static")
    size = _integer(static, "max_chunk_size_tokens")
    overlap = _integer(static, "chunk_overlap_tokens")
    if not MIN_CHUNK_SIZE_TOKENS <= size <= MAX_CHUNK_SIZE_TOKENS:
        raise ValueError(
            "chunking_strategy.static.max_chunk_size_tokens must be between "
            f"{MIN_CHUNK_SIZE_TOKENS} and {MAX_CHUNK_SIZE_TOKENS}, not {size}"
        )
    if overlap < 0:
        raise ValueError(
            f"chunking_strategy.static.chunk_overlap_tokens must be >= 0, not {overlap}"
        )
    if overlap > size // 2:
        raise ValueError(
            "chunking_strategy.static.chunk_overlap_tokens must not exceed half of "
            f"max_chunk_size_tokens ({size // 2} for {size}), not {overlap}"
        )
    return _static(size, overlap)


def _only_fields(value: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(value) - allowed)
    if extra:
        raise ValueError(f"{where}.{extra[0]} is not a known field")


def _integer(static: Mapping[str, Any], field: str) -> int:
    number = static.get(field)
    # bool is an int subclass, and `true` is no chunk size.
    if not isinstance(number, int) or isinstance(number, bool):
        if field not in static:
            raise ValueError(f"chunking_strategy.static.{field} is required")
        raise ValueError(f"chunking_strategy.static.{field} must be an integer, not {number!r}")
    return number


def _static(size: int, overlap: int) -> dict[str, Any]:
    return {
        "type": "static",
        "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap},
    }
