"""The settings of the HTTP surface (what browsers may call, bodies, the pages served beside
the API), a part of `config.Settings`, which reads them from the environment (ASSISTANTS_...)
and the configuration file."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode


def split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class HttpSettings(BaseSettings):
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins whose browser pages may call the API (e.g. "
        "https://app.example.com; * for any); unset: browsers' cross-origin calls are "
        "refused.",
    )
    max_body_bytes: int = Field(
        32 * 1024 * 1024, gt=0, description="Largest JSON request body accepted, in bytes."
    )
    max_upload_bytes: int = Field(
        536_870_912, ge=1, description="Largest file accepted by POST /v1/files, in bytes."
    )
    require_beta_header: bool = Field(
        True,
        description=(
            "Refuse /assistants and /threads calls without 'OpenAI-Beta: assistants=v2', "
            "as the hosted service did."
        ),
    )
    docs_enabled: bool | None = Field(
        None,
        description="Serve /docs (Swagger UI, offline) and /openapi.json. Unset: on without "
        "api_keys, off with them (the documentation needs no key).",
    )
    playground_enabled: bool = Field(
        True,
        description="Serve the playground, a page to build, try and debug assistants in a "
        "browser, at /playground (and redirect / there). It calls the API with the key its "
        "user enters, so it shows nothing a key could not read.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _csv_origins(cls, value: object) -> object:
        return split_csv(value)
