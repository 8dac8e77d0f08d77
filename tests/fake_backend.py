"""A fake OpenAI-compatible backend on a loopback socket, for tests that need the model server.

It serves `GET /v1/models` today; later capabilities add chat completions to it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


def create_fake_backend(models: list[str], api_key: str | None = None) -> FastAPI:
    app = FastAPI()
    app.state.requests = []

    @app.get("/v1/models")
    async def list_models(request: Request) -> Any:
        app.state.requests.append(dict(request.headers))
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        return {"object": "list", "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"}
            for m in models]}

    return app
