"""HTTP metrics and `GET /metrics`.

`RequestMetrics` counts every response by method, route template (`/v1/threads/{thread_id}`,
never the ids: one series per route, not per object) and status, and times it until its last
byte. `/metrics` reads the gauges that are database counts, then answers in Prometheus' text
format; like `/health` it needs no key (expose it to your Prometheus, not the internet).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistants_server import metrics
from assistants_server.db.models import RunRow, VectorStoreFileRow

router = APIRouter(include_in_schema=False)


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)


@router.get("/metrics")
async def metrics_endpoint(request: Request) -> Response:
    state = request.app.state
    async with state.read_sessionmaker() as session:
        metrics.RUNS_QUEUED.set(await session.scalar(
            select(func.count()).select_from(RunRow).where(RunRow.status == "queued")) or 0)
        metrics.FILES_INDEXING.set(await session.scalar(
            select(func.count()).select_from(VectorStoreFileRow).where(
                VectorStoreFileRow.status == "in_progress")) or 0)
    executor = getattr(state, "executor", None)
    sandbox = executor.services.sandbox if executor is not None else None
    metrics.SANDBOX_SESSIONS.set(sandbox.session_count() if sandbox is not None else 0)
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
