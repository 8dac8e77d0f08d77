"""Browser tests of the playground: Debian's Chromium driven by Playwright (`playwright` of the
test extra, with the browser the machine has; nothing is downloaded). Without a Chromium the
tests are skipped, except in CI (`ASSISTANTS_TEST_REQUIRE_SERVICES=1`, which `.ci/run` sets
after installing Debian's `chromium`), where that fails them.

Every page a test opens fails the test on an uncaught script error or a refused resource (a
content security policy violation included)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.runs.conftest import backend, prefix, script, sent  # noqa: F401 - fixtures

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


def _chromium() -> str | None:
    named = os.environ.get("ASSISTANTS_TEST_CHROMIUM")
    if named:
        return named
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if (found := shutil.which(name)) is not None:
            return found
    return None


@pytest.fixture
def browser() -> Iterator[Any]:
    """Chromium, for one test: Playwright's sync API runs an event loop on this thread while it
    is started, which the asyncio tests that follow on this worker could not run beside."""
    executable = _chromium()
    if executable is None:
        problem = ("no Chromium to drive: install Debian's `chromium` (apt-get install "
                   "chromium; .ci/run does) or name one in ASSISTANTS_TEST_CHROMIUM")
        if REQUIRE_SERVICES:
            pytest.fail(problem)
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


class PageProblems(list[str]):
    """What went wrong in a page: uncaught errors, console errors, refused requests."""


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    problems = PageProblems()
    opened.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    opened.on("console", lambda message: message.type == "error" and problems.append(
        f"console: {message.text}"))
    opened.problems = problems
    yield opened
    context.close()
    # A 401 or 404 the page was asked to show is logged by Chromium as a failed resource.
    unexpected = [p for p in problems if "Failed to load resource" not in p]
    assert not unexpected, unexpected


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the tests write their screenshots: ASSISTANTS_TEST_SCREENSHOTS (the README's come
    from `ASSISTANTS_TEST_SCREENSHOTS=docs/playground`), else the test's own directory."""
    named = os.environ.get("ASSISTANTS_TEST_SCREENSHOTS")
    folder = Path(named) if named else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
