"""Builds the ASGI application from one Settings object: the only place everything is wired."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from assistants_server.api.errors import install_error_handlers
from assistants_server.api.middleware import GateMiddleware
from assistants_server.assistants.router import router as assistants_router
from assistants_server.config import Settings
from assistants_server.db.engine import create_engine, create_sessionmaker
from assistants_server.messages.router import router as messages_router
from assistants_server.models.router import router as models_router
from assistants_server.threads.router import router as threads_router

log = logging.getLogger("assistants_server")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.started_at = int(time.time())
        async with httpx.AsyncClient(timeout=settings.backend_timeout_seconds) as http:
            app.state.http = http
            try:
                yield
            finally:
                await engine.dispose()

    app = FastAPI(
        title="assistants-server",
        summary="OpenAI Assistants API v2, self-hosted.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    for router in (assistants_router, threads_router, messages_router, models_router):
        app.include_router(router)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(
        GateMiddleware,
        api_keys=settings.api_keys,
        max_body_bytes=settings.max_body_bytes,
        require_beta_header=settings.require_beta_header,
    )
    return app
