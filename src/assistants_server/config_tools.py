"""The settings of the tools runs use (file_search's index and embeddings, code_interpreter's
sandbox), a part of `config.Settings`, which adds the rest and reads them all from the
environment (ASSISTANTS_...) and the configuration file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings


class ToolSettings(BaseSettings):
    parse_timeout_seconds: float = Field(
        120.0, gt=0,
        description="Wall-clock and CPU limit of parsing one uploaded file for file_search (in "
        "a process of its own); a file that takes longer fails as invalid_file.",
    )
    parse_memory_mb: int = Field(
        1024, ge=128,
        description="Memory limit of the process parsing one uploaded file, in MiB.",
    )
    ingest_concurrency: int = Field(
        2, ge=1, description="Files parsed and indexed at once per process (vector stores).",
    )
    embeddings_base_url: str | None = Field(
        None,
        description="Base URL of an OpenAI-compatible /embeddings endpoint; file_search then "
        "ranks by meaning as well as by keywords. Unset: keyword ranking only.",
    )
    code_interpreter_isolation: Literal["namespaces", "none"] = Field(
        "namespaces",
        description="How code_interpreter sessions are isolated: 'namespaces' (no network, "
        "own PID and mount namespaces, resource limits; the tool is disabled where they are "
        "unavailable) or 'none' (runs code as the server's user: only on a machine you "
        "trust entirely with every assistant's code).",
    )
    code_interpreter_python: str | None = Field(
        None,
        description="The Python that code_interpreter cells run on, with the packages they "
        "can import: e.g. a virtualenv's bin/python where you installed more. Unset: the "
        "server's own, which has numpy, pandas, scipy, matplotlib and openpyxl.",
    )
    code_interpreter_timeout_seconds: float = Field(
        30.0, gt=0, description="Wall-clock limit of one code_interpreter execution.",
    )
    code_interpreter_memory_mb: int = Field(
        1024, ge=64, description="Memory limit of each code_interpreter process, in MiB.",
    )
    code_interpreter_disk_mb: int = Field(
        512, ge=1,
        description="What each code_interpreter session's /mnt/data may hold, in MiB, the "
        "files put there for it included. Run as root, the server mounts a memory-backed "
        "filesystem of this size there (count it with the memory limit); otherwise it measures "
        "after each execution and removes what an execution wrote past it.",
    )
    code_interpreter_idle_seconds: float = Field(
        1200.0, gt=0,
        description="A thread's Python session unused this long is closed (its variables "
        "and files in /mnt/data are lost).",
    )
    file_search_wait_seconds: float = Field(
        60.0, ge=0,
        description="How long a run's file_search waits for files of its vector stores that "
        "are still being indexed (a file attached to the message just sent), as the hosted "
        "service did; then the model is told which files it could not search. 0: no wait.",
    )
    embeddings_api_key: str | None = Field(None, description="API key for the embeddings URL.")
    embeddings_model: str = Field(
        "text-embedding-3-small", description="Model name sent to the embeddings endpoint.",
    )
