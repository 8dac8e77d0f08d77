"""The base of every request model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from assistants_server.kit.validation import find_nul, rule_error


class WireModel(BaseModel):
    """A request model: unknown fields are refused, as the service refused them, and so are
    NUL characters, which PostgreSQL cannot store in text (refused on every database alike)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        path = find_nul(value)
        if path is not None:
            raise rule_error("Invalid '{param}': strings cannot contain the NUL character "
                             "(\\u0000).", code="invalid_value", suffix=path)
        return value
