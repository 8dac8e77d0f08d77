"""`/docs` and `/openapi.json`: served offline and telling the truth.

Swagger UI comes from this server's own copy (swagger-ui-bundle-v2, FastAPI's documented
"self-hosting JavaScript and CSS" recipe), never from a CDN, since many users have no internet.
FastAPI's generated document is then corrected where it would mislead a reader:

- errors are the 400/401/404 (and 500) `{"error": {...}}` envelope this server sends, never the
  422 `HTTPValidationError` FastAPI assumes;
- operations that stream list `text/event-stream`, with the events they carry;
- retrieving a run, served by a plain route for speed, is documented like the others;
- the API key and the `OpenAI-Beta` header are security schemes, so "Authorize" fills both
  for "Try it out".

With API keys configured the documentation is off unless `ASSISTANTS_DOCS_ENABLED=true`: it
describes every route to anyone who can reach the server.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

ASSETS = "/docs/assets"
ERROR = {"$ref": "#/components/schemas/ErrorResponse"}
ERROR_SCHEMA = {
    "title": "ErrorResponse", "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message", "type"], "properties": {
        "message": {"type": "string"}, "type": {"type": "string"},
        "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}}
ERRORS = {"400": "The request was invalid: the message names the parameter.",
          "401": "No API key, or one this server does not accept.",
          "404": "No such object (or route).",
          "500": "A fault of the server; quote the request id the message gives."}
EVENTS = ("Server-sent events, as the hosted service sent them: thread.created (thread and "
          "run), thread.run.created, thread.run.queued, thread.run.in_progress, "
          "thread.run.step.created, thread.run.step.in_progress, thread.run.step.delta, "
          "thread.message.created, thread.message.in_progress, thread.message.delta, "
          "thread.message.completed, thread.run.step.completed, thread.run.requires_action or "
          "thread.run.completed (or cancelling, cancelled, failed, incomplete, expired), then "
          "`done`; `error` (the error envelope) when the server fails. Every frame has an "
          "`id:`, to resume with `Last-Event-ID`.")
STREAMING = {("post", "/v1/threads/{thread_id}/runs"), ("post", "/v1/threads/runs"),
             ("post", "/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs"),
             ("get", "/v1/threads/{thread_id}/runs/{run_id}/events")}
RUN = "/v1/threads/{thread_id}/runs/{run_id}"


def install_docs(app: FastAPI) -> None:
    """Serve `/docs` from local assets and replace the app's OpenAPI document."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - docs",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            # validatorUrl null: Swagger UI would otherwise show a badge fetched from
            # validator.swagger.io, sending it this document's address (and fail offline).
            swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None})

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = corrected(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's "extending OpenAPI"


def corrected(document: dict[str, Any]) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["ErrorResponse"] = ERROR_SCHEMA
    components["securitySchemes"] = {
        "ApiKey": {"type": "http", "scheme": "bearer",
                   "description": "Your API key, as the SDK sends it."},
        "OpenAIBeta": {"type": "apiKey", "in": "header", "name": "OpenAI-Beta",
                       "description": "`assistants=v2` (required on /v1/assistants and "
                                      "/v1/threads)."}}
    document["security"] = [{"ApiKey": [], "OpenAIBeta": []}]
    paths = document["paths"]
    if RUN in paths and "post" in paths[RUN] and "get" not in paths[RUN]:
        paths[RUN]["get"] = _retrieve_run(paths[RUN]["post"])
    for path, item in paths.items():
        for method, operation in item.items():
            _errors(path, operation)
            if (method, path) in STREAMING:
                _streams(operation)
    return document


def _retrieve_run(modify: dict[str, Any]) -> dict[str, Any]:
    """GET of a run: the path's parameters and the Run answer, as modifying it has them."""
    return {"tags": modify.get("tags", ["runs"]), "summary": "Retrieve Run",
            "operationId": "retrieve_run", "description": "Retrieves a run.",
            "parameters": copy.deepcopy(modify.get("parameters", [])),
            "responses": {"200": copy.deepcopy(modify["responses"]["200"])}}


def _errors(path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    if not path.startswith("/v1/"):
        return
    for status, description in ERRORS.items():
        if status == "404" and "{" not in path:
            continue
        responses.setdefault(status, {"description": description,
                                      "content": {"application/json": {"schema": ERROR}}})


def _streams(operation: dict[str, Any]) -> None:
    """A request with `stream: true` is answered with events instead of the object; an
    operation without a body (the run's events) only ever streams."""
    ok = operation["responses"].setdefault("200", {"description": "Successful Response"})
    stream = {"text/event-stream": {"schema": {"type": "string", "description": EVENTS}}}
    if operation.get("requestBody"):
        ok["content"] = {**ok.get("content", {}), **stream}
        ok["description"] = "The object as JSON, or with `stream: true` its events as they come."
    else:
        ok["content"] = stream
        ok["description"] = "The run's events."
