"""Hostile input, generated: schemathesis drives every operation of the server's own OpenAPI
document and of OpenAI's with values derived from their schemas (seeded, a few examples each,
so the run is bounded and repeatable), on both databases. No answer may be a server error, and
every error must be the service's `{"error": {...}}` envelope.

About a minute on two cores: the default `pytest` leaves it to its own step of `.ci/run`
(`ASSISTANTS_TEST_FUZZ=1 .venv/bin/pytest tests/contract/test_fuzz.py`)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from assistants_server.app import create_app
from assistants_server.config import Settings
from tests.conftest import LiveServer, make_settings

HEADERS = {"OpenAI-Beta": "assistants=v2", "Authorization": "Bearer sk-fuzz"}
if os.environ.get("ASSISTANTS_TEST_FUZZ") != "1":  # before the documents are loaded
    pytest.skip("the fuzz run is opt-in (about a minute): run it with `ASSISTANTS_TEST_FUZZ=1 "
                ".venv/bin/pytest tests/contract/test_fuzz.py`; .ci/run does",
                allow_module_level=True)
FUZZ = settings(max_examples=4, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

OURS = schemathesis.openapi.from_dict(
    create_app(Settings(data_dir=Path(tempfile.mkdtemp()), docs_enabled=True)).openapi())
OPENAI = schemathesis.openapi.from_path(Path(__file__).with_name("assistants-openapi-2026.yaml"))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[str]:
    generated = make_settings(request.param, tmp_path_factory.mktemp("fuzz"))
    chosen = next(generated)
    with LiveServer(create_app(chosen)) as live:
        yield live.url
    generated.close()


def _check(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["message"]
        assert isinstance(error["type"], str)


@OURS.parametrize()
@FUZZ
def test_the_servers_own_document(case: Any, server: str) -> None:
    _check(case.call(base_url=server, headers=HEADERS, timeout=30))


@OPENAI.parametrize()
@FUZZ
def test_openais_document(case: Any, server: str) -> None:
    _check(case.call(base_url=server + "/v1", headers=HEADERS, timeout=30))
