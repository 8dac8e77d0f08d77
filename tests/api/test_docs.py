"""`/docs` works offline and `/openapi.json` tells the truth: Swagger UI from local files,
retrieve-run documented, the error envelope's 400/401/404 instead of FastAPI's 422, streams
as text/event-stream, and the key and beta header as security schemes.

The documentation reads no database, so these tests run on SQLite only."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from assistants_server.app import create_app
from tests.conftest import make_settings

ERROR = {"$ref": "#/components/schemas/ErrorResponse"}
RUN = "/v1/threads/{thread_id}/runs/{run_id}"


@asynccontextmanager
async def _server(tmp_path: Path, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process, asked with no API key and no OpenAI-Beta header, as a browser
    opening /docs asks."""
    [settings] = make_settings("sqlite", tmp_path, **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        yield client


def _urls(page: str) -> list[str]:
    return re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page)


async def _document(tmp_path: Path) -> dict[str, Any]:
    async with _server(tmp_path) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_docs_load_every_asset_from_this_server(tmp_path: Path) -> None:
    async with _server(tmp_path) as client:
        page = await client.get("/docs")
        assert page.status_code == 200 and "swagger" in page.text.lower()
        urls = _urls(page.text)
        assert urls and all(url.startswith("/") and not url.startswith("//")
                            for url in urls), urls
        assets = [await client.get(url) for url in urls if url.startswith("/docs/")]
    assert {a.status_code for a in assets} == {200}
    types = {a.request.url.path.rsplit(".", 1)[-1]: a.headers["content-type"] for a in assets}
    assert "javascript" in types["js"] and "css" in types["css"] and "png" in types["png"]


async def test_docs_send_the_document_to_no_online_validator(tmp_path: Path) -> None:
    """Swagger UI's default shows a badge fetched from validator.swagger.io."""
    async with _server(tmp_path) as client:
        page = await client.get("/docs")
    assert re.search(r'"validatorUrl"\s*:\s*null', page.text), page.text


async def test_retrieve_run_is_documented_with_its_run(tmp_path: Path) -> None:
    retrieve = (await _document(tmp_path))["paths"][RUN]["get"]
    assert retrieve["operationId"] == "retrieve_run"
    assert retrieve["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Run"}
    assert {(p["name"], p["in"]) for p in retrieve["parameters"]} == {
        ("thread_id", "path"), ("run_id", "path")}


async def test_errors_are_documented_as_the_envelope_never_422(tmp_path: Path) -> None:
    document = await _document(tmp_path)
    operations = [(path, op) for path, item in document["paths"].items()
                  for op in item.values()]
    assert all("422" not in op["responses"] for _, op in operations)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert set(document["components"]["schemas"]["ErrorResponse"]["properties"]["error"][
        "properties"]) == {"message", "type", "param", "code"}
    for path, op in operations:
        if not path.startswith("/v1/"):
            continue
        statuses = {"400", "401", "404"} if "{" in path else {"400", "401"}
        for status in statuses:
            assert op["responses"][status]["content"]["application/json"]["schema"] == ERROR, (
                path, status)


async def test_streaming_operations_list_their_event_stream(tmp_path: Path) -> None:
    paths = (await _document(tmp_path))["paths"]
    for path in ("/v1/threads/{thread_id}/runs", "/v1/threads/runs",
                 RUN + "/submit_tool_outputs"):
        content = paths[path]["post"]["responses"]["200"]["content"]
        assert {"application/json", "text/event-stream"} <= set(content), path
        events = content["text/event-stream"]["schema"]["description"]
        assert "thread.run.created" in events and "done" in events
    events_only = paths[RUN + "/events"]["get"]["responses"]["200"]["content"]
    assert set(events_only) == {"text/event-stream"}


async def test_authorize_fills_the_api_key_and_the_beta_header(tmp_path: Path) -> None:
    document = await _document(tmp_path)
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"]["type"] == "http" and schemes["ApiKey"]["scheme"] == "bearer"
    assert schemes["OpenAIBeta"] == {**schemes["OpenAIBeta"], "type": "apiKey",
                                     "in": "header", "name": "OpenAI-Beta"}
    assert "assistants=v2" in schemes["OpenAIBeta"]["description"]
    assert document["security"] == [{"ApiKey": [], "OpenAIBeta": []}]


async def test_with_api_keys_the_documentation_is_off_unless_asked_for(tmp_path: Path) -> None:
    async with _server(tmp_path, api_keys=["sk-team"]) as client:
        hidden = [await client.get(path) for path in ("/docs", "/openapi.json")]
    assert [r.status_code for r in hidden] == [404, 404]
    async with _server(tmp_path / "on", api_keys=["sk-team"], docs_enabled=True,
                       require_beta_header=True) as client:
        page = await client.get("/docs")
        shown = [page, *[await client.get(url) for url in _urls(page.text)]]
    assert [r.status_code for r in shown] == [200] * len(shown) and len(shown) >= 4
