"""The base of every request model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from assistants_server.kit.validation import find_nul, rule_error


class WireModel(BaseModel):
    """A request model: unknown fields are refused, as the service refused them, and so are
    NUL characters and unpaired surrogates, which no database stores faithfully (refused on
    every database alike)."""

    # Strict: `"stream": "yes"` and `"temperature": "1"` are refused as the service refused
    # them (pydantic would otherwise read them as true and 1.0).
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        path = find_nul(value)
        if path is not None:
            raise rule_error("Invalid '{param}': strings cannot contain the NUL character "
                             "(\\u0000) or an unpaired surrogate (\\ud800-\\udfff).",
                             code="invalid_value", suffix=path)
        return value
