"""Builds the ASGI application from one Settings object: the only place everything is wired."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager

import httpx
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from assistants_server import tracing
from assistants_server.access.router import router as admin_router
from assistants_server.api.docs import install_docs
from assistants_server.api.health import router as health_router
from assistants_server.api.middleware import GateMiddleware
from assistants_server.api.observe import RequestMetrics
from assistants_server.api.observe import router as metrics_router
from assistants_server.assistants.router import router as assistants_router
from assistants_server.auth.keys import KeyStore
from assistants_server.backends.catalog import ModelCatalog
from assistants_server.backends.chat import ModelProfile, NoBackend
from assistants_server.backends.embeddings import Embedder, OpenAIEmbedder, embedder_from
from assistants_server.backends.router import ModelRouter
from assistants_server.chat.router import router as chat_router
from assistants_server.config import Settings
from assistants_server.db import observed
from assistants_server.db.engine import (
    create_engine,
    create_read_sessionmaker,
    create_sessionmaker,
)
from assistants_server.engine.executor import Executor
from assistants_server.events.bus import EventBus, LocalEventBus
from assistants_server.events.redis_bus import RedisEventBus
from assistants_server.events.wakeups import wakeups_for
from assistants_server.files.blobs import LocalBlobStore, blob_store
from assistants_server.files.router import router as files_router
from assistants_server.files.service import purge_expired
from assistants_server.kit.errors import BackendUnavailableError, install_error_handlers
from assistants_server.kit.uow import commit
from assistants_server.models.router import router as models_router
from assistants_server.playground import install_playground
from assistants_server.retrieval.index import DatabaseSearchIndex
from assistants_server.runs.deletion import router as thread_deletion_router
from assistants_server.runs.router import router as runs_router
from assistants_server.sandbox import IsolationUnavailable, Limits, LocalSandbox
from assistants_server.sandbox.directories import process_directory
from assistants_server.stopping import draining_on_stop_signals
from assistants_server.threads.messages.router import router as messages_router
from assistants_server.threads.router import router as threads_router
from assistants_server.tokens import count_text
from assistants_server.toolbox import register_builtins
from assistants_server.tools.base import ToolServices
from assistants_server.vector_stores.ingest import Ingestor
from assistants_server.vector_stores.router import router as vector_stores_router
from assistants_server.vector_stores.service import forget_file

log = logging.getLogger("assistants_server")
# Response headers a browser page may read: the SDKs read these.
EXPOSED_HEADERS = ["x-request-id", "openai-poll-after-ms", "openai-processing-ms",
                   "openai-version", "openai-organization"]


async def _start_sandbox(settings: Settings) -> LocalSandbox | None:
    """The code_interpreter sandbox, or None (the tool then tells the model it is
    unavailable) where isolation does not work and the operator did not opt out of it."""
    limits = Limits(wall_seconds=settings.code_interpreter_timeout_seconds,
                    memory_bytes=settings.code_interpreter_memory_mb << 20,
                    disk_bytes=settings.code_interpreter_disk_mb << 20,
                    idle_seconds=settings.code_interpreter_idle_seconds)
    # A directory per process: sessions belong to the process that started them.
    directory = await asyncio.to_thread(process_directory, settings.data_dir / "sandboxes")
    sandbox = LocalSandbox(directory, limits,
                           python=settings.code_interpreter_python or sys.executable,
                           isolation=settings.code_interpreter_isolation)
    try:
        await sandbox.check()
    except IsolationUnavailable as exc:
        log.error("code_interpreter is disabled: %s. Run the server where Linux namespaces "
                  "are available, or set ASSISTANTS_CODE_INTERPRETER_ISOLATION=none to run "
                  "code unisolated (see docs/SANDBOX.md).", exc)
        await sandbox.aclose()
        return None
    if settings.code_interpreter_isolation == "none":
        log.warning("code_interpreter runs code WITHOUT isolation "
                    "(ASSISTANTS_CODE_INTERPRETER_ISOLATION=none)")
    return sandbox


def _profiles(settings: Settings, router: ModelRouter) -> Callable[[str], ModelProfile]:
    """A model's context window (its backend's, as configured, else the server's setting) and
    whether it sees images."""

    def profile(model: str) -> ModelProfile:
        backend = router.backend_for(model) if router.configured else None
        if backend is None:
            return ModelProfile(settings.context_window_tokens)
        return ModelProfile(backend.config.context_window or settings.context_window_tokens,
                            vision=backend.config.vision,
                            max_completion_tokens=backend.config.max_completion_tokens)

    return profile


def _embedder(
    settings: Settings, router: ModelRouter, http: httpx.AsyncClient
) -> Embedder | None:
    """file_search's embeddings: the configuration file's `embeddings` backend, else the
    ASSISTANTS_EMBEDDINGS_* variables, else none (keyword ranking only)."""
    chosen = settings.models_config.embeddings
    if chosen is not None:
        backend = router.backends[chosen.backend]
        return OpenAIEmbedder(backend.meta, backend.config.base_url, chosen.model)
    return embedder_from(settings.embeddings_base_url, settings.embeddings_api_key,
                         settings.embeddings_model, http)


async def _announce_models(catalog: ModelCatalog) -> None:
    """The start-up log: each backend, whether it answered, and the public model names."""
    router = catalog.router
    for backend in router.backends.values():
        try:
            served = [m["id"] for m in await catalog.backend_models(backend)]
            log.info("backend %s at %s answered; it serves: %s", backend.name,
                     backend.config.base_url, ", ".join(served) or "(no models listed)")
        except BackendUnavailableError as exc:
            log.warning("backend %s did not answer: %s", backend.name, exc.message)
    if router.configured:
        names = [name for route in router.config.models for name in route.names]
        log.info("models: %s", ", ".join(names))
    else:
        log.warning("no model backend is configured: runs will fail until one is (set "
                    "ASSISTANTS_BACKEND_BASE_URL or a configuration file's backends)")


async def _open_storage(app: FastAPI, settings: Settings, stack: AsyncExitStack) -> None:
    """The database, the event bus and the file store."""
    engine = create_engine(settings)
    stack.push_async_callback(engine.dispose)
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.read_sessionmaker = create_read_sessionmaker(engine)
    app.state.started_at = int(time.time())
    bus: EventBus = LocalEventBus(retention_seconds=settings.stream_retention_seconds)
    if settings.redis_url:
        bus = RedisEventBus(settings.redis_url, prefix=settings.redis_prefix,
                            retention_seconds=settings.stream_retention_seconds,
                            max_connections=settings.redis_max_connections)
        stack.push_async_callback(bus.close)
    app.state.bus = bus
    app.state.wakeups = wakeups_for(bus, engine, settings.database_schema)
    app.state.blobs = blob_store(settings)
    if settings.blob_url:  # a wrong bucket or credentials fail the start, not an upload
        await app.state.blobs.check()
    app.state.keys = KeyStore(app.state.sessionmaker, api_keys=settings.api_keys,
                              admin_keys=settings.admin_keys,
                              cache_seconds=settings.key_cache_seconds)


def _open_models(app: FastAPI, settings: Settings, stack: AsyncExitStack,
                 http: httpx.AsyncClient) -> None:
    """The model router and its public names, and the search index with its embedder."""
    router = ModelRouter.from_config(settings.models_config)
    stack.push_async_callback(router.aclose)
    app.state.models = router
    app.state.catalog = ModelCatalog(router, settings.models, app.state.started_at)
    announce = asyncio.create_task(_announce_models(app.state.catalog))
    stack.callback(announce.cancel)
    index = DatabaseSearchIndex(_embedder(settings, router, http))
    app.state.search_index = index
    app.state.forget_file = lambda session, file_id: forget_file(session, index, file_id)


async def _start_workers(app: FastAPI, settings: Settings, stack: AsyncExitStack) -> None:
    """The run executor (with the code_interpreter sandbox) and the ingestion worker, when
    this process drives runs; stopped in the reverse order."""
    app.state.executor = app.state.ingestor = None
    if not settings.drives_runs:
        return
    sandbox = await _start_sandbox(settings)
    if sandbox is not None:
        stack.push_async_callback(sandbox.aclose)
    index, router, bus = app.state.search_index, app.state.models, app.state.bus

    async def purge_files() -> None:
        async with app.state.sessionmaker() as session:
            await purge_expired(session, app.state.blobs, int(time.time()),
                                app.state.forget_file)
            await commit(session)
        if isinstance(app.state.blobs, LocalBlobStore):
            await app.state.blobs.sweep_temporary()  # what crashed uploads left

    # Load the tokenizer now rather than in the first run's way.
    await asyncio.to_thread(count_text, "")
    executor = Executor(
        app.state.sessionmaker, router if router.configured else NoBackend(),
        concurrency=settings.executor_concurrency, lease_seconds=settings.lease_seconds,
        poll_seconds=settings.poll_seconds, profiles=_profiles(settings, router), bus=bus,
        sweepers=[purge_files, *([sandbox.reap_idle] if sandbox else [])],
        services=ToolServices(index=index, sandbox=sandbox, blobs=app.state.blobs,
                              ingestion_wait_seconds=settings.file_search_wait_seconds))
    await executor.start()
    # Once the workers stopped, what they handed back is for the other processes to take now.
    for kind in ("ingestion", "runs"):
        stack.push_async_callback(app.state.wakeups.wake, kind)
    stack.push_async_callback(executor.stop)
    stack.enter_context(draining_on_stop_signals(
        lambda: executor.stop(settings.shutdown_grace_seconds)))
    ingestor = Ingestor(app.state.sessionmaker, app.state.blobs, index,
                        concurrency=settings.ingest_concurrency,
                        lease_seconds=settings.lease_seconds, poll_seconds=settings.poll_seconds,
                        parse_seconds=settings.parse_timeout_seconds,
                        parse_memory_mb=settings.parse_memory_mb)
    await ingestor.start()
    stack.push_async_callback(ingestor.stop)
    app.state.executor, app.state.ingestor = executor, ingestor
    app.state.wakeups.listen({"runs": executor.notify, "ingestion": ingestor.notify})
    stack.push_async_callback(app.state.wakeups.stop)  # first: before the workers stop


@contextmanager
def _collecting_less(young_threshold: int) -> Iterator[None]:
    """Fewer garbage collections while serving (ASSISTANTS_GC_YOUNG_THRESHOLD): what was
    loaded at start moves out of the collector's sight, and the youngest generation is
    collected every `young_threshold` allocations instead of 700. Undone at shutdown."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(young_threshold, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.load()
    settings.configure_logging()
    register_builtins()
    observed.install()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(
                httpx.AsyncClient(timeout=settings.backend_timeout_seconds))
            await _open_storage(app, settings, stack)
            _open_models(app, settings, stack, http)
            await _start_workers(app, settings, stack)
            if settings.gc_young_threshold:
                stack.enter_context(_collecting_less(settings.gc_young_threshold))
            yield

    docs = settings.docs_enabled if settings.docs_enabled is not None else not (
        settings.api_keys or settings.admin_keys)
    app = FastAPI(
        title="assistants-server",
        summary="OpenAI Assistants API v2, self-hosted.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # /docs from local assets (api/docs.py); no redoc
        openapi_url="/openapi.json" if docs else None,
    )
    if docs:
        install_docs(app)
    if settings.playground_enabled and settings.role != "worker":
        install_playground(app)
    app.state.settings = settings
    install_error_handlers(app)
    # runs_router first: its `POST /v1/threads/runs` must win over `POST /v1/threads/{id}`.
    routers = (admin_router, runs_router, thread_deletion_router, assistants_router, threads_router,
               messages_router, models_router, files_router, vector_stores_router, chat_router)
    for router in routers if settings.role != "worker" else ():  # a worker: health only
        app.include_router(router)

    app.include_router(health_router)
    app.include_router(metrics_router)

    app.add_middleware(
        GateMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        require_beta_header=settings.require_beta_header,
    )
    if settings.cors_origins:
        # Outside the gate: a preflight carries no key and no beta header, and is answered here.
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
            allow_headers=["*"], expose_headers=EXPOSED_HEADERS, max_age=600)
    app.add_middleware(RequestMetrics)  # outermost: refusals are counted too
    if settings.otel_enabled:
        tracing.configure(app)
    return app
