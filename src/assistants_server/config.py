"""Settings: every knob of the server, read from `ASSISTANTS_*` environment variables.

One `Settings` object is built at start-up and handed to `create_app`; nothing else reads the
environment, so tests can build as many differently configured apps as they like.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from assistants_server.backends.config import ModelsConfig, from_single_backend
from assistants_server.config_http import HttpSettings, split_csv
from assistants_server.config_tools import ToolSettings
from assistants_server.logs import configure as configure_logs

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Settings(ToolSettings, HttpSettings):
    """The server's configuration. Field descriptions double as `assistants-server --help`;
    the tools' settings are in `config_tools.py`, the HTTP surface's in `config_http.py`."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANTS_", extra="ignore")

    config: Path | None = Field(
        None,
        description="YAML configuration file (backends, models, embeddings, and any of these "
        "settings by their lower-case names; the environment overrides it). See "
        "assistants.example.yaml.",
    )
    data_dir: Path = Field(
        Path("./data"),
        description="Directory for the SQLite database and stored files.",
    )
    database_url: str | None = Field(
        None,
        description=(
            "SQLAlchemy async URL, e.g. postgresql+asyncpg://user@host/db. "
            "Default: sqlite+aiosqlite:///<data_dir>/assistants.db."
        ),
    )
    database_schema: str | None = Field(
        None,
        description="PostgreSQL schema to keep the tables in (search_path). Default: public.",
    )
    sqlite_synchronous: Literal["normal", "full"] = Field(
        "normal",
        description="SQLite's durability: 'normal' (a power cut may lose the last commits, "
        "never corrupts) or 'full' (an acknowledged write survives a power cut; slower "
        "writes).",
    )
    sqlite_fair_writes: bool = Field(
        True,
        description="SQLite: this process's writers take the database's one write lock in "
        "the order they asked for it (an in-process queue) rather than racing for it in "
        "SQLite's busy handler, which under load let a run wait seconds to start.",
    )
    blob_url: str | None = Field(
        None,
        description="Where files' bytes are kept: unset, the data directory's files/ (a volume "
        "every process shares); s3://BUCKET[/PREFIX], an S3-compatible object store, for "
        "processes on hosts that share no disk (the 's3' extra; credentials from the AWS_* "
        "variables, a profile or an instance role).",
    )
    s3_endpoint_url: str | None = Field(
        None, description="The S3 endpoint of a store other than AWS (MinIO, Ceph...), e.g. "
        "http://minio:9000.")
    database_pool_size: int = Field(
        30, ge=1, description="PostgreSQL connections each process keeps open (and never exceeds); "
        "without redis_url, a process that drives runs keeps one more that listens for wake-ups.")
    backend_base_url: str | None = Field(
        None,
        description="OpenAI-compatible Chat Completions endpoint, e.g. http://localhost:11434/v1.",
    )
    backend_api_key: str | None = Field(
        None, description="API key sent to the backend as 'Authorization: Bearer'."
    )
    backend_timeout_seconds: float = Field(
        60.0, gt=0, description="Seconds the backend may take to send an answer's first token "
        "(retries included), and may stay silent mid-answer.",
    )
    backend_max_completion_tokens: int | None = Field(
        4096, ge=1, description="Tokens a model may generate per answer when the run sets no "
        "max_completion_tokens (small models otherwise write until their context is full).",
    )
    models_config: ModelsConfig = Field(
        default_factory=ModelsConfig, exclude=True,
        description="The backends and model routes of the configuration file (config); with "
        "no file, the one-backend variables above.",
    )
    run_lifetime_seconds: int = Field(
        600, ge=10, description="Seconds from a run's creation until it expires (its "
        "expires_at), whether it is working or waiting for tool outputs.",
    )
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated model ids the server accepts when no backend list is available. "
            "When set, assistants and runs naming another model are refused."
        ),
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated keys clients must send as 'Authorization: Bearer <key>'. "
            "They are keys of the default project. When unset and no key was created "
            "(`assistants-server keys`), any key is accepted and the server listens on "
            "loopback only."
        ),
    )
    admin_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated admin keys for /v1/organization "
        "(projects, their keys, usage); `assistants-server admin-keys create` makes more.")
    key_cache_seconds: float = Field(
        1.0, ge=0, le=60, description="How long a process trusts what it read of a key or "
        "project: a deleted key or an archived project stops working within this time.")
    host: str | None = Field(
        None,
        description="Address to listen on. Default: 127.0.0.1 without api_keys, 0.0.0.0 with.",
    )
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on.")
    workers: int = Field(
        1, ge=1,
        description="Server processes sharing the port, each with its own executor (one per "
        "core uses them all). With more than one, set redis_url so that a stream can be "
        "resumed on any of them.",
    )
    executor_enabled: bool = Field(
        True, description="Drive runs and index vector store files in this process (turn off "
        "for API-only processes).",
    )
    role: Literal["all", "api", "worker"] = Field(
        "all",
        description="What this process does: 'all' (the API, and driving runs and indexing "
        "files), 'api' (the API only: runs are driven by worker processes, streams come "
        "through Redis; needs redis_url) or 'worker' (drives runs, indexes files, cleans up; "
        "serves only /health, /ready and /metrics). `serve --role`, `worker`.",
    )
    executor_concurrency: int = Field(64, ge=1, description="Runs driven at once per process.")
    poll_seconds: float = Field(
        1.0, gt=0, description="How often a process that drives runs looks for queued runs and "
        "files to index when nothing woke it (queued work wakes every process at once through "
        "Redis or PostgreSQL's NOTIFY; the poll is the safety net). Its periodic sweeps wait "
        "for it too.")
    gc_young_threshold: int = Field(
        0, ge=0,
        description="Allocations between collections of Python's youngest garbage-collector "
        "generation while serving, with what was loaded at start frozen out of the "
        "collector's sight (gc.freeze); 0 keeps Python's defaults. See ARCHITECTURE.md.",
    )
    lease_seconds: float = Field(
        30.0, gt=0,
        description="How long a process's claim on a run lasts without renewal; a run whose "
        "process died is failed this long after.",
    )
    shutdown_grace_seconds: float = Field(
        8.0, ge=0,
        description="On SIGTERM or Ctrl-C, how long runs in progress may go on (their streams "
        "open) before the rest are handed back, queued again for another process or for this "
        "one after a restart. Keep it below the time your supervisor waits before SIGKILL "
        "(docker stop: 10 s).",
    )
    context_window_tokens: int = Field(
        128_000, ge=256,
        description="The model's context window, in tokens; 'auto' truncation fits the thread "
        "into it.",
    )
    poll_after_ms: int = Field(
        200, ge=0, description="openai-poll-after-ms sent with runs: how often SDK pollers ask."
    )
    poll_hold_ms: int = Field(
        200, ge=0, description="How long a poll of a run this process is driving waits for the "
        "run to move on (complete, need tool outputs, fail) before answering; 0: never.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis for run event logs shared by every process (e.g. "
        "redis://redis:6379/0): any process then serves any run's stream, and API-only "
        "processes can stream. Unset: logs live in each process.",
    )
    redis_prefix: str = Field("assistants", description="Prefix of this server's Redis keys.")
    redis_max_connections: int = Field(
        10_000, ge=10, description="Redis connections per process: each open stream holds one "
        "(Redis itself accepts 10,000 clients unless its maxclients says otherwise).")
    stream_keepalive_seconds: float = Field(
        15.0, ge=0,
        description="Seconds between ': ping' comments on an idle event stream (0: none).",
    )
    stream_retention_seconds: float = Field(
        60.0, ge=0,
        description="How long a finished run's events stay available to clients that "
        "reconnect (GET .../runs/{run_id}/events with Last-Event-ID).",
    )
    access_log: bool = Field(
        False, description="Log a line per HTTP request (off by default: it costs throughput).",
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    log_format: Literal["text", "json"] = Field(
        "text", description="'text' (a line per record, with the request, run and thread ids "
        "in brackets) or 'json' (an object per line: time, level, logger, message, "
        "request_id, run_id, thread_id).")
    otel_enabled: bool = Field(False, description="OpenTelemetry traces (the 'otel' extra): "
                               "requests, runs and model calls, exported over OTLP as the "
                               "OTEL_* variables say (OTEL_EXPORTER_OTLP_ENDPOINT, ...).")
    @field_validator("models", "api_keys", "admin_keys", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return split_csv(value)

    @field_validator("backend_base_url", "embeddings_base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @classmethod
    def load(cls, config: Path | None = None) -> Settings:
        """The settings from the environment over the configuration file (`config`, else
        ASSISTANTS_CONFIG). Raises ConfigFileError or pydantic's ValidationError."""
        from assistants_server.backends.config_file import check_settings_keys, load_config_file

        from_env = cls()
        path = config or from_env.config
        if path is None:
            return from_env
        file = load_config_file(path)
        check_settings_keys(file, [name for name in cls.model_fields
                                   if name not in ("config", "models_config")])
        # Set in the environment (an empty value is not a setting), not filled in by a
        # validator (the default database).
        named = {key.upper() for key, value in os.environ.items() if value != ""}
        explicit: dict[str, Any] = {name: getattr(from_env, name) for name in cls.model_fields
                                    if f"ASSISTANTS_{name.upper()}" in named}
        if file.models.backends and "backend_base_url" in explicit:
            logging.getLogger(__name__).warning(
                "ASSISTANTS_BACKEND_BASE_URL is ignored: %s declares backends", path)
        try:
            return cls(**{**file.settings, **explicit, "config": path,
                          "models_config": file.models})
        except ValidationError as exc:
            error = exc.errors()[0]
            key = str(error["loc"][0]) if error["loc"] else ""
            if key in file.settings and key not in explicit:
                raise file.error_at(key, error["msg"]) from None
            raise

    @model_validator(mode="after")
    def _single_backend(self) -> Settings:
        if not self.models_config.backends and self.backend_base_url:
            self.models_config = from_single_backend(
                self.backend_base_url, self.backend_api_key,
                timeout=self.backend_timeout_seconds, models=self.models,
                max_completion_tokens=self.backend_max_completion_tokens)
        return self

    @model_validator(mode="after")
    def _api_role_streams_through_redis(self) -> Settings:
        if self.role == "api" and not self.redis_url:
            raise ValueError(
                "role 'api' serves runs that worker processes drive, and their streams reach "
                "it only through Redis: set ASSISTANTS_REDIS_URL (and a database every process "
                "shares, such as PostgreSQL)")
        return self

    @property
    def drives_runs(self) -> bool:
        """Whether this process drives runs and indexes files."""
        return self.executor_enabled and self.role != "api"

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            path = (self.data_dir / "assistants.db").resolve()
            self.database_url = f"sqlite+aiosqlite:///{path}"
        return self

    @property
    def resolved_database_url(self) -> str:
        assert self.database_url is not None  # set by _default_database
        return self.database_url

    def configure_logging(self) -> None:
        """The server's log format and level; a no-op where logging is set up already (a
        worker process started by `serve` sets it up again, as the command did)."""
        configure_logs(self.log_level, self.log_format)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        # httpx logs every model call at INFO: a line per run, and a tenth of its CPU.
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            logging.getLogger("httpx").setLevel(logging.WARNING)

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def listen_host(self) -> str:
        if self.host:
            return self.host
        return "0.0.0.0" if self.api_keys or self.admin_keys else "127.0.0.1"
