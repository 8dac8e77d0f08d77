"""The Prometheus metrics this server keeps (prometheus-client), served at `GET /metrics`.

Counters and histograms are updated where things happen: HTTP requests by `api/observe.py`,
runs by `db/observed.py` once a status change has committed (so a write retried after a stale
read counts once), the model's first token by `engine/answer.py`. Gauges that are counts in
the database (queued runs, files being indexed) are read when scraped.

Several processes (`ASSISTANTS_WORKERS`): the supervisor gives them one
`PROMETHEUS_MULTIPROC_DIR` (prometheus-client's multiprocess mode), and whichever process
answers a scrape sums every process's counters; gauges say in `multiprocess_mode` how theirs
combine. Run durations and queue waits come from the run's own timestamps, whole seconds as
the API gives them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_RUN_SECONDS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600)

HTTP_REQUESTS = Counter(
    "assistants_http_requests_total", "HTTP requests answered, by method, route and status.",
    ["method", "route", "status"])
HTTP_SECONDS = Histogram(
    "assistants_http_request_duration_seconds",
    "From a request's arrival to the end of its response (a stream: until it closed).",
    ["method", "route"])
RUNS_CREATED = Counter("assistants_runs_created_total", "Runs created, by model.", ["model"])
RUNS_ENDED = Counter("assistants_runs_ended_total", "Runs ended, by status and model.",
                     ["status", "model"])
RUN_SECONDS = Histogram("assistants_run_duration_seconds",
                        "From a run's creation to its end, by status.", ["status"],
                        buckets=_RUN_SECONDS)
QUEUE_SECONDS = Histogram("assistants_run_queue_wait_seconds",
                          "From a run's creation to its first turn starting.",
                          buckets=(0.5, *_RUN_SECONDS))
FIRST_TOKEN_SECONDS = Histogram(
    "assistants_backend_first_token_seconds",
    "From asking the model to its first event, by public model name.", ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60))
RUNS_FAILED = Counter("assistants_runs_failed_total",
                      "Runs failed, by their last_error code (rate_limit_exceeded, "
                      "server_error...).", ["code"])
RUNS_ACTIVE = Gauge("assistants_runs_active", "Runs being driven by the server's processes.",
                    multiprocess_mode="livesum")
STREAMS_OPEN = Gauge("assistants_streams_open", "Event streams open to clients.",
                     multiprocess_mode="livesum")
RUNS_QUEUED = Gauge("assistants_runs_queued", "Runs waiting for a process to drive them.",
                    multiprocess_mode="mostrecent")
FILES_INDEXING = Gauge("assistants_ingestion_files_in_progress",
                       "Vector store files waiting for or being indexed.",
                       multiprocess_mode="mostrecent")
SANDBOX_SESSIONS = Gauge("assistants_sandbox_sessions",
                         "code_interpreter sessions open, as of each process's last scrape.",
                         multiprocess_mode="livesum")


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
