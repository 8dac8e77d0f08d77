"""Object ids: a prefix and 24 base62 characters, drawn evenly from the whole alphabet."""

from __future__ import annotations

import re
import string
from collections import Counter

from assistants_server.kit.ids import new_id


def test_ids_are_the_prefix_and_24_base62_characters_all_different() -> None:
    ids = [new_id("msg_") for _ in range(10_000)]
    assert all(re.fullmatch(r"msg_[A-Za-z0-9]{24}", value) for value in ids)
    assert len(set(ids)) == len(ids)


def test_every_character_is_about_equally_likely() -> None:
    counts = Counter("".join(new_id("run_")[4:] for _ in range(10_000)))
    assert set(counts) == set(string.ascii_letters + string.digits)
    expected = 240_000 / 62  # ~3871; a skewed mapping (byte % 62) would give 4 more of 8 chars
    assert all(abs(n - expected) < 0.1 * expected for n in counts.values())
