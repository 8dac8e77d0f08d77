"""What the operator declares about models: the backends, the public model names clients use
and where each goes, and which backend embeds for file_search.

These are the `backends`, `models` and `embeddings` sections of the configuration file
(`backends/config_file.py` reads it, with errors that name the line); with no file, the
one-backend `ASSISTANTS_BACKEND_*` variables become a backend named `default` that serves
every model name (`from_single_backend`).
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ToolCalling = Literal["native", "tagged", "none"]
TokenLimitParameter = Literal["max_completion_tokens", "max_tokens"]
CATCH_ALL = "*"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Strict):
    """Seconds. `first_token` bounds the wait for the first token of an answer, this backend's
    retries included, from when this server sends the request (not while it waits for one of
    the backend's `max_concurrency` slots; a fallback backend has its own); `idle` the silence
    between two chunks; `total` a whole answer."""

    connect: float = Field(10.0, gt=0)
    first_token: float = Field(60.0, gt=0)
    idle: float = Field(60.0, gt=0)
    total: float = Field(600.0, gt=0)


class BackendConfig(_Strict):
    """One OpenAI-compatible endpoint and what it can do where that cannot be discovered."""

    name: str = Field(min_length=1)
    base_url: str
    api_key: str | None = None
    api_key_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    retries: int = Field(2, ge=0, le=10)
    max_concurrency: int | None = Field(
        None, ge=1, description="Requests sent at once; more wait in this server's queue.")
    context_window: int | None = Field(None, ge=256)
    tool_calling: ToolCalling = "native"
    stream_tools: bool | None = Field(
        None, description="Whether it streams answers that may call tools; None: try, and "
        "ask without streaming if it refuses.")
    vision: bool = False
    named_tool_choice: bool = Field(
        True, description="Whether it honours tool_choice naming a function (llama.cpp's "
        "server takes only strings): if not, it is offered that function alone, required.")
    token_limit_parameter: TokenLimitParameter = "max_completion_tokens"
    max_completion_tokens: int | None = Field(
        4096, ge=1, description="Cap on generated tokens when the client sets none.")

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_key(self) -> BackendConfig:
        if self.api_key is not None and self.api_key_env is not None:
            raise ValueError("give api_key or api_key_env, not both")
        return self

    def resolved_api_key(self) -> str | None:
        if self.api_key_env is not None:
            return os.environ.get(self.api_key_env) or None
        return self.api_key


class Target(_Strict):
    """A backend and the name that backend knows the model by (default: the public name)."""

    backend: str
    model: str | None = None


class ModelRoute(_Strict):
    """A public model name (or a pattern such as `gpt-4-turbo*`, or `*` for every other name)
    and where it goes: a backend, then the fallbacks in order."""

    name: str = Field(min_length=1)
    backend: str
    model: str | None = None
    aliases: list[str] = Field(default_factory=list)
    fallbacks: list[Target] = Field(default_factory=list)
    owned_by: str = "assistants-server"

    @property
    def targets(self) -> list[Target]:
        return [Target(backend=self.backend, model=self.model), *self.fallbacks]

    @property
    def names(self) -> list[str]:
        return [self.name, *self.aliases]


class EmbeddingsConfig(_Strict):
    backend: str
    model: str = "text-embedding-3-small"


class ModelsConfig(_Strict):
    backends: list[BackendConfig] = Field(default_factory=list)
    models: list[ModelRoute] = Field(default_factory=list)
    embeddings: EmbeddingsConfig | None = None

    @model_validator(mode="after")
    def _references(self) -> ModelsConfig:
        names = [backend.name for backend in self.backends]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"backend names must be unique; repeated: {', '.join(duplicated)}")
        public = [name for route in self.models for name in route.names]
        repeated = sorted({name for name in public if public.count(name) > 1})
        if repeated:
            raise ValueError(f"model names and aliases must be unique; repeated: "
                             f"{', '.join(repeated)}")
        for route in self.models:
            for target in route.targets:
                if target.backend not in names:
                    raise ValueError(f"model '{route.name}' names backend '{target.backend}', "
                                     f"which is not declared (declared: {', '.join(names)})")
        if self.embeddings is not None and self.embeddings.backend not in names:
            raise ValueError(f"embeddings names backend '{self.embeddings.backend}', which is "
                             f"not declared (declared: {', '.join(names)})")
        return self

    def backend(self, name: str) -> BackendConfig:
        return next(backend for backend in self.backends if backend.name == name)


def from_single_backend(
    base_url: str | None, api_key: str | None, *, timeout: float = 60.0,
    context_window: int | None = None, models: list[str] | None = None,
    max_completion_tokens: int | None = None,
) -> ModelsConfig:
    """The configuration the one-backend variables describe: a backend `default` serving the
    names in `models` (ASSISTANTS_MODELS), or every name when that is empty."""
    if not base_url:
        return ModelsConfig()
    backend = BackendConfig(
        name="default", base_url=base_url, api_key=api_key, context_window=context_window,
        timeouts=Timeouts(first_token=timeout, idle=timeout, total=max(600.0, timeout)),
        max_completion_tokens=max_completion_tokens)
    names = models or [CATCH_ALL]
    return ModelsConfig(backends=[backend], models=[
        ModelRoute(name=name, backend="default") for name in names])
