"""The contract suite again under openai==1.59.4, the SDK the users' tutorials were written for.

The suite's own environment has the newest 3.x; this test builds a second virtual environment
(cached under .cache/, rebuilt when pyproject.toml changes) with the pinned SDK and runs
tests/contract, tests/runs, tests/chat (chat completions and embeddings) and tests/seeds (the
streaming tutorial's cells) in it as a subprocess, on SQLite only: what the SDK parses and
sends does not depend on the database, and the main suite covers both.

It takes minutes (a second install, then a few hundred tests again), so the default `pytest`
skips it, saying how to run it; .ci/run runs it as a step of its own:

    ASSISTANTS_TEST_SDK_MATRIX=1 .venv/bin/pytest tests/test_sdk_versions.py
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PINNED = "1.59.4"


def _test_deps() -> list[str]:
    """The `test` extra of pyproject.toml, but the SDK: that one is pinned."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [dep for dep in project["optional-dependencies"]["test"]
            if not dep.startswith("openai")]


def _environment() -> Path:
    stamp = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + PINNED.encode()
                           + Path(__file__).read_bytes()).hexdigest()
    home = ROOT / ".cache" / f"sdk-{PINNED}"
    python = home / "bin" / "python"
    marker = home / ".stamp"
    if marker.exists() and marker.read_text() == stamp and python.exists():
        return python
    venv.EnvBuilder(clear=True, with_pip=True).create(home)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-e", str(ROOT), f"openai=={PINNED}", *_test_deps()],
        check=True, capture_output=True, text=True,
    )
    marker.write_text(stamp)
    return python


# Everything on SQLite, and the run helpers (poll, stream, event handlers) on PostgreSQL too:
# the wire is the same on both, and the rest would double the run for nothing new.
SELECTED = "not postgres or test_sdk_runs or test_streaming"

# Opt-in, see the module's docstring; .ci/run sets it.
SDK_MATRIX = os.environ.get("ASSISTANTS_TEST_SDK_MATRIX") == "1"


@pytest.mark.skipif(
    not SDK_MATRIX,
    reason=f"the openai=={PINNED} run is opt-in (minutes long): run it with "
    "`ASSISTANTS_TEST_SDK_MATRIX=1 .venv/bin/pytest tests/test_sdk_versions.py`; .ci/run does",
)
@pytest.mark.skipif(
    os.environ.get("ASSISTANTS_TEST_EXPECT_OPENAI") is not None,
    reason="already running inside a pinned-SDK environment",
)
def test_contract_suite_passes_on_openai_1_59_4() -> None:
    try:
        python = _environment()
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"could not install openai=={PINNED}:\n{exc.stdout}\n{exc.stderr}")
    env = {**os.environ, "ASSISTANTS_TEST_EXPECT_OPENAI": PINNED}
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", SELECTED,
         "tests/contract", "tests/runs", "tests/chat", "tests/seeds"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    summary = result.stdout.strip().splitlines()[-1:] or [""]
    sys.stdout.write(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in summary[0] and "failed" not in summary[0], summary[0]
