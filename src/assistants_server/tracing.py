"""OpenTelemetry traces, optional (the `otel` extra; ASSISTANTS_OTEL_ENABLED).

A request gets its server span (the FastAPI instrumentation), the run it queues a `run` span
that is the request span's child, and the model calls inside the run client spans (the HTTPX
instrumentation) that are the run span's children. A run is driven by an executor task, in this
process or another, long after the request's context is gone, so the request's context is
written with the run (`runs.trace_context`, W3C trace context, as a message queue carries it)
and the run span starts from it.

Off, nothing here imports OpenTelemetry and every call is a no-op. Exporting is the SDK's
business: OTLP over HTTP as the standard OTEL_* variables say, unless the process already has a
tracer provider (`opentelemetry-instrument`, or a test's in-memory one), which is then used.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Connection, event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapper

from assistants_server.db.models import RunRow

# Requests not worth a trace: probes and scrapes.
UNTRACED = "health,ready,metrics"
_tracer: Any = None


MISSING = ("ASSISTANTS_OTEL_ENABLED is set but OpenTelemetry is not installed: install the "
           "'otel' extra (pip install 'assistants-server[otel]'), or unset it.")


class TracingUnavailable(RuntimeError):
    """ASSISTANTS_OTEL_ENABLED without the `otel` extra installed."""


def available() -> bool:
    """Whether the `otel` extra is installed."""
    names = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http",
             "opentelemetry.instrumentation.fastapi", "opentelemetry.instrumentation.httpx")
    try:
        return all(importlib.util.find_spec(name) is not None for name in names)
    except ModuleNotFoundError:  # a parent package is missing
        return False


def configure(app: FastAPI) -> None:
    """Trace `app`'s requests, every HTTPX client's calls, and the runs it queues."""
    global _tracer
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError as exc:
        raise TracingUnavailable(MISSING) from exc
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(_exporting_provider())
    FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED)
    if not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry:
        HTTPXClientInstrumentor().instrument()  # the model calls: clients made from now on
    if _tracer is None:
        event.listen(RunRow, "before_insert", _remember_context)
    _tracer = trace.get_tracer("assistants_server")


def _exporting_provider() -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME", "assistants-server")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def _remember_context(_mapper: Mapper[Any], _connection: Connection, row: RunRow) -> None:
    """A run is queued: write the context it was queued in (the request's span) with it."""
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    row.trace_context = carrier or None


async def context_of(sessionmaker: async_sessionmaker[AsyncSession], run_id: str,
                     known: RunRow | None) -> dict[str, str] | None:
    """The context a run was queued in; read only when tracing and the run is not at hand."""
    if _tracer is None:
        return None
    if known is not None:
        return known.trace_context
    async with sessionmaker() as session:
        return await session.scalar(select(RunRow.trace_context).where(RunRow.id == run_id))


@contextmanager
def run_span(run_id: str, queued_in: Mapping[str, str] | None) -> Iterator[None]:
    """Driving a run, as a child of the request that queued it."""
    if _tracer is None:
        yield
        return
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind

    with _tracer.start_as_current_span("run", context=extract(dict(queued_in or {})),
                                       kind=SpanKind.CONSUMER,
                                       attributes={"assistants.run_id": run_id}):
        yield
