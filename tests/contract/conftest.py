"""Contract-suite checks: when a pinned SDK version is requested, make sure it is the one used."""

from __future__ import annotations

import os

import openai
import pytest


@pytest.fixture(autouse=True, scope="session")
def _expected_sdk_version() -> None:
    expected = os.environ.get("ASSISTANTS_TEST_EXPECT_OPENAI")
    if expected and openai.__version__ != expected:
        pytest.fail(f"expected openai=={expected}, but {openai.__version__} is installed")
