"""chunk_text cuts text into token windows of the requested size and overlap without splitting
characters; resolve_chunking_strategy applies the hosted service's chunking_strategy rules."""

from __future__ import annotations

import random
from typing import Any

import pytest

from assistants_server.retrieval.chunking import Chunk, chunk_text, resolve_chunking_strategy
from assistants_server.tokens import encoding as _encoding

WORDS = [
    *("the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "by"),
    *("on", "not", "this", "are", "from", "at", "which", "have", "an", "they", "retrieval"),
    *("vector", "store", "document", "embedding", "search", "ranking", "window", "token"),
]


def _english(words: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    sentences: list[str] = []
    while words > 0:
        length = min(words, rng.randint(4, 18))
        sentences.append(" ".join(rng.choice(WORDS) for _ in range(length)).capitalize() + ".")
        words -= length
    return " ".join(sentences)


def _expected_windows(total: int, size: int, overlap: int) -> list[tuple[int, int]]:
    windows, start = [], 0
    while True:
        end = min(start + size, total)
        windows.append((start, end))
        if end == total:
            return windows
        start = end - overlap


@pytest.mark.parametrize(("size", "overlap"), [(800, 400), (100, 0), (100, 50), (257, 31)])
def test_windows_are_exact_token_ranges_of_the_text(size: int, overlap: int) -> None:
    text = _english(3000)
    tokens = _encoding().encode_ordinary(text)
    windows = _expected_windows(len(tokens), size, overlap)

    chunks = chunk_text(text, size, overlap)

    assert chunks == [Chunk(_encoding().decode(tokens[s:e]), e - s) for s, e in windows]
    assert all(chunk.tokens <= size for chunk in chunks)


def test_consecutive_chunks_share_the_overlap_and_rebuild_the_text() -> None:
    text = _english(2500, seed=2)
    tokens = _encoding().encode_ordinary(text)
    chunks = chunk_text(text, 800, 400)
    assert len(chunks) > 3

    rebuilt = chunks[0].text
    for index in range(1, len(chunks)):
        start = index * 400
        shared = _encoding().decode(tokens[start : start + 400])
        assert chunks[index - 1].text.endswith(shared)
        assert chunks[index].text.startswith(shared)
        rebuilt += chunks[index].text[len(shared) :]
    assert rebuilt == text


def test_last_window_ends_at_the_end_and_never_lies_inside_the_previous_one() -> None:
    cases = [(800, [800]), (801, [800, 401]), (1200, [800, 800]), (1201, [800, 800, 401])]
    for total, expected in cases:
        text = " hello" * total
        assert len(_encoding().encode_ordinary(text)) == total
        chunks = chunk_text(text, 800, 400)
        assert [chunk.tokens for chunk in chunks] == expected
        assert chunks[-1].text.endswith(" hello" * expected[-1])


def test_short_text_is_one_chunk() -> None:
    assert chunk_text("Hello world") == [Chunk("Hello world", 2)]


def test_empty_text_has_no_chunks() -> None:
    assert chunk_text("") == []


def test_special_token_text_is_chunked_as_plain_text() -> None:
    chunks = chunk_text("before <|endoftext|> after")
    assert [chunk.text for chunk in chunks] == ["before <|endoftext|> after"]
    assert chunks[0].tokens == len(_encoding().encode_ordinary("before <|endoftext|> after"))


def _multibyte(characters: int) -> str:
    rng = random.Random(3)
    alphabet = "日本語の文章を分割する中文字符测试한국어텍스트ÄéßŁ🙂🎉🚀👩‍💻🇫🇷"
    return "".join(rng.choice(alphabet + " ") for _ in range(characters))


@pytest.mark.parametrize(("size", "overlap"), [(16, 8), (100, 50), (100, 0), (7, 3)])
def test_multibyte_text_is_never_cut_inside_a_character(size: int, overlap: int) -> None:
    text = _multibyte(4000)
    pieces = _encoding().decode_tokens_bytes(_encoding().encode_ordinary(text))
    # The tokenizer does end tokens mid-character here, so the windows have to avoid it.
    assert any(_is_partial_utf8(piece) for piece in pieces)

    chunks = chunk_text(text, size, overlap)

    assert all("\ufffd" not in chunk.text for chunk in chunks)
    assert all(chunk.tokens <= size for chunk in chunks)
    position, end = 0, 0
    for chunk in chunks:
        found = text.find(chunk.text, position)
        assert 0 <= found <= end  # starts inside or right after the previous chunk
        assert found + len(chunk.text) > end  # and reaches past it
        position, end = found + 1, found + len(chunk.text)
    assert (text.find(chunks[0].text), end) == (0, len(text))


def _is_partial_utf8(piece: bytes) -> bool:
    try:
        piece.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_lone_surrogates_become_replacement_characters_like_the_tokenizer_does() -> None:
    tokens = len(_encoding().encode_ordinary("a\ufffdb"))
    assert chunk_text("a\ud800b") == [Chunk("a\ufffdb", tokens)]


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_chunk_text_rejects_windows_that_cannot_advance(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="chunk_overlap_tokens < max_chunk_size_tokens"):
        chunk_text("some text", size, overlap)


def _static(size: object, overlap: object) -> dict[str, Any]:
    static = {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}
    return {"type": "static", "static": static}


@pytest.mark.parametrize("value", [None, {"type": "auto"}])
def test_auto_and_absent_strategies_are_stored_as_static_800_400(value: Any) -> None:
    assert resolve_chunking_strategy(value) == _static(800, 400)


@pytest.mark.parametrize(("size", "overlap"), [(100, 0), (100, 50), (4096, 2048), (801, 400)])
def test_valid_static_strategy_is_stored_as_given(size: int, overlap: int) -> None:
    assert resolve_chunking_strategy(_static(size, overlap)) == _static(size, overlap)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            _static(800, 401),
            r"chunk_overlap_tokens must not exceed half of max_chunk_size_tokens "
            r"\(400 for 800\), not 401",
        ),
        (_static(801, 401), r"\(400 for 801\)"),
        (_static(99, 0), r"static.max_chunk_size_tokens must be between 100 and 4096, not 99"),
        (_static(4097, 0), r"static.max_chunk_size_tokens must be between 100 and 4096, not 4097"),
        (_static(800, -1), r"static.chunk_overlap_tokens must be >= 0, not -1"),
        (_static(True, 0), r"static.max_chunk_size_tokens must be an integer, not True"),
        (_static(800, False), r"static.chunk_overlap_tokens must be an integer, not False"),
        (_static(800.0, 400), r"static.max_chunk_size_tokens must be an integer, not 800.0"),
        (_static("800", 400), r"static.max_chunk_size_tokens must be an integer, not '800'"),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 800}},
            r"static.chunk_overlap_tokens is required",
        ),
        (
            {"type": "static", "static": {"chunk_overlap_tokens": 0}},
            r"static.max_chunk_size_tokens is required",
        ),
        ({"type": "static"}, r"chunking_strategy.static is required"),
        ({"type": "other"}, r"chunking_strategy.type must be 'auto' or 'static', not 'other'"),
        ({}, r"chunking_strategy.type must be 'auto' or 'static', not None"),
        ({"type": "auto", "static": {}}, r"chunking_strategy.static is not a known field"),
        ({**_static(800, 400), "size": 1}, r"chunking_strategy.size is not a known field"),
        (
            {"type": "static", "static": {**_static(800, 400)["static"], "x": 1}},
            r"chunking_strategy.static.x is not a known field",
        ),
        ("auto", r"chunking_strategy must be an object"),
    ],
)
def test_invalid_strategy_is_refused_naming_the_field(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_chunking_strategy(value)
