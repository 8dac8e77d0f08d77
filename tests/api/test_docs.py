"""`/docs` works offline and `/openapi.json` tells the truth: Swagger UI from local files,
retrieve-run documented, the error envelope's 400/401/404 instead of FastAPI's 422, streams
as text/event-stream, and the key and beta header as security schemes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from assistants_server.app import create_app
from tests.conftest import make_settings


async def _get(tmp_path: Path, *paths: str, **overrides: Any) -> list[httpx.Response]:
    [settings] = make_settings("sqlite", tmp_path, **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        return [await client.get(path) for path in paths]


async def test_docs_load_every_asset_from_this_server(tmp_path: Path) -> None:
    [page] = await _get(tmp_path, "/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls and all(not url.startswith(("http:", "https:", "//")) for url in urls), urls
    assets = await _get(tmp_path / "again", *[u for u in urls if u.startswith("/docs/")])
    assert {a.status_code for a in assets} == {200}
    types = {a.request.url.path.rsplit(".", 1)[-1]: a.headers["content-type"] for a in assets}
    assert "javascript" in types["js"] and "css" in types["css"]


async def test_the_document_tells_the_truth(tmp_path: Path) -> None:
    [response] = await _get(tmp_path, "/openapi.json")
    document = response.json()
    paths = document["paths"]
    retrieve = paths["/v1/threads/{thread_id}/runs/{run_id}"]["get"]
    assert retrieve["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Run"}
    assert {p["name"] for p in retrieve["parameters"]} >= {"thread_id", "run_id"}
    operations = [(path, op) for path, item in paths.items() for op in item.values()]
    assert all("422" not in op["responses"] for _, op in operations)
    for path, op in operations:
        if path.startswith("/v1/") and "{" in path:
            error = op["responses"]["404"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorResponse"}, path
    create = paths["/v1/threads/{thread_id}/runs"]["post"]["responses"]["200"]["content"]
    assert "text/event-stream" in create and "application/json" in create
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"]["scheme"] == "bearer"
    assert schemes["OpenAIBeta"] == {**schemes["OpenAIBeta"], "in": "header",
                                     "name": "OpenAI-Beta"}
    assert document["security"] == [{"ApiKey": [], "OpenAIBeta": []}]


async def test_with_api_keys_the_documentation_is_off_unless_asked_for(tmp_path: Path) -> None:
    hidden = await _get(tmp_path, "/docs", "/openapi.json", api_keys=["sk-team"])
    assert [r.status_code for r in hidden] == [404, 404]
    shown = await _get(tmp_path / "on", "/docs", "/openapi.json", api_keys=["sk-team"],
                       docs_enabled=True)
    assert [r.status_code for r in shown] == [200, 200]
