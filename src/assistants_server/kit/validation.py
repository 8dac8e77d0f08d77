"""Request-field rules the service enforces, and the service's wording for broken ones.

Pydantic does the checking; this module turns its error records into the messages, `param`
paths and codes that OpenAI's API used (`Invalid 'metadata': too many properties...`), and
holds the field types several resources share (metadata, bounded strings).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Discriminator
from pydantic_core import PydanticCustomError

_LOCATION_ROOTS = ("body", "query", "path", "header")
_JSON_NAMES = {
    "string": "a string", "str": "a string", "int": "an integer", "float": "a decimal",
    "bool": "a boolean", "dict": "an object", "list": "an array", "NoneType": "null",
}


def rule_error(template: str, *, code: str | None = None, suffix: str = "") -> PydanticCustomError:
    """A validation error in the service's words. `{param}` in the template becomes the full
    parameter path (e.g. `messages[0].metadata.key`); `suffix` is appended to that path."""
    return PydanticCustomError("openai", "{message}", {"message": template, "code": code,
                                                       "suffix": suffix})


def format_param(loc: Sequence[Any]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, str) and item.startswith("="):
            continue  # a union tag (see BY_TYPE), not part of the request's shape
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _json_type(value: Any) -> str:
    return _JSON_NAMES.get(type(value).__name__, "a " + type(value).__name__)


def describe_validation_error(errors: Sequence[Any]) -> tuple[str, str | None, str | None]:
    """(message, param, code) for the first error pydantic or FastAPI reported."""
    err = errors[0]
    loc = [p for p in err.get("loc", ()) if p not in _LOCATION_ROOTS]
    param = format_param(loc)
    kind: str = err["type"]
    ctx: dict[str, Any] = err.get("ctx") or {}
    value = err.get("input")
    from_query = (err.get("loc") or ("",))[0] == "query"
    if from_query and isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    return (_shape_error(kind, param, ctx, value) or _value_error(kind, param, ctx, value)
            or (f"Invalid '{param}': {err.get('msg', 'invalid value')}.", param or None, None))


Described = tuple[str, str | None, str | None]


def _shape_error(kind: str, param: str, ctx: dict[str, Any], value: Any) -> Described | None:
    """Errors of the request's shape: unparsable, missing, unknown or mistagged parts."""
    if kind == "openai":
        param = (param + (ctx.get("suffix") or "")).lstrip(".")
        return ctx["message"].replace("{param}", param), param or None, ctx.get("code")
    if kind == "json_invalid":
        return (
            "We could not parse the JSON body of your request. The API expects a JSON object "
            "with Content-Type: application/json; check that the body is valid JSON.",
            None,
            None,
        )
    if kind == "missing":
        if not param:
            return "The request body is missing: send a JSON object.", None, None
        return f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag", "")).lstrip("=")
        # `=*`: the member taking whatever was registered since (tools/definitions.py).
        tags = [t for t in str(ctx.get("expected_tags", "")).split(", ") if t != "'=*'"]
        supported = ", ".join(tags).replace("'=", "'")
        return (f"Invalid value: '{tag}'. Supported values are: {supported}.",
                f"{param}.type", "invalid_value")
    if kind == "union_tag_not_found":
        return (f"Missing required parameter: '{param}.type'.", f"{param}.type",
                "missing_required_parameter")
    if kind == "extra_forbidden":
        return f"Unrecognized request argument supplied: {param}", None, None
    if kind in ("literal_error", "enum"):
        expected = ctx.get("expected", "")
        return (f"Invalid value: '{value}'. Supported values are: {expected}.", param,
                "invalid_value")
    return None


def _value_error(kind: str, param: str, ctx: dict[str, Any], value: Any) -> Described | None:
    """Errors of a value: too long or short, out of bounds, of the wrong type."""
    if kind == "string_too_long":
        return (f"Invalid '{param}': string too long. Expected a string with maximum length "
                f"{ctx['max_length']}, but got a string with length {len(value)} instead.",
                param, "string_above_max_length")
    if kind == "string_too_short":
        return (f"Invalid '{param}': string too short. Expected a string with minimum length "
                f"{ctx['min_length']}, but got a string with length {len(value)} instead.",
                param, "string_below_min_length")
    if kind == "too_long":
        return (f"Invalid '{param}': array too long. Expected an array with maximum length "
                f"{ctx['max_length']}, but got an array with length {ctx.get('actual_length')} "
                "instead.", param, "array_above_max_length")
    if kind == "too_short":
        return (f"Invalid '{param}': empty array. Expected an array with minimum length "
                f"{ctx['min_length']}, but got an empty array instead.", param,
                "empty_array")
    if kind in ("less_than_equal", "less_than", "greater_than_equal", "greater_than"):
        number = "integer" if isinstance(value, int) else "decimal"
        above = kind.startswith("less")
        bound = ctx.get("le", ctx.get("lt", ctx.get("ge", ctx.get("gt"))))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        op = {"less_than_equal": "<=", "less_than": "<", "greater_than_equal": ">=",
              "greater_than": ">"}[kind]
        where = "above maximum" if above else "below minimum"
        return (f"Invalid '{param}': {number} {where} value. Expected a value {op} {bound}, "
                f"but got {value} instead.", param,
                f"{number}_{'above_max' if above else 'below_min'}_value")
    if not param and kind.endswith("_type"):
        return ("The request body must be a JSON object, sent with Content-Type: "
                "application/json.", None, "invalid_type")
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "model_attributes_type":
        expected = kind.removesuffix("_type").removesuffix("_parsing")
        expected = {"model_attributes": "dict", "model": "dict", "dict": "dict"}.get(
            expected, expected)
        return (f"Invalid type for '{param}': expected {_JSON_NAMES.get(expected, expected)}, "
                f"but got {_json_type(value)} instead.", param, "invalid_type")
    return None


# --- shared field types -------------------------------------------------------------------

MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


def _check_metadata(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_METADATA_PAIRS:
        raise rule_error(
            "Invalid '{param}': too many properties. Expected an object with at most "
            f"{MAX_METADATA_PAIRS} properties, but got an object with {len(value)} properties "
            "instead.", code="object_above_max_properties")
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY:
            raise rule_error(
                "Invalid '{param}': property name too long. Expected a property name with "
                f"maximum length {MAX_METADATA_KEY}, but got a property name with length "
                f"{len(key)} instead.", code="property_name_above_max_length",
                suffix=f".{key}")
        if len(item) > MAX_METADATA_VALUE:
            raise rule_error(
                "Invalid '{param}': string too long. Expected a string with maximum length "
                f"{MAX_METADATA_VALUE}, but got a string with length {len(item)} instead.",
                code="string_above_max_length", suffix=f".{key}")
    return value


def ids_of(prefix: str) -> AfterValidator:
    """A list of ids of one kind: one of another kind (a file id where a vector store's is
    expected) is refused naming its index, as it is in attachments."""
    kind = prefix.rstrip("_-")

    def check(values: list[str]) -> list[str]:
        for index, value in enumerate(values):
            if not value.startswith(prefix):
                raise rule_error(f"Invalid '{{param}}': '{value}'. Expected an ID that begins "
                                 f"with '{kind}'.", code="invalid_value", suffix=f"[{index}]")
        return values

    return AfterValidator(check)


def _null_is_empty(value: object) -> object:
    return {} if value is None else value


Metadata = Annotated[
    dict[str, str], BeforeValidator(_null_is_empty), AfterValidator(_check_metadata)
]


# What no database stores faithfully: NUL (PostgreSQL refuses it in text) and a lone UTF-16
# surrogate (not a character: PostgreSQL refuses it, SQLite stores U+FFFD in its place).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def find_nul(value: Any, path: str = "") -> str | None:
    """The path (`.a[0].b`) of the first string or key in `value` holding a NUL or a lone
    surrogate, if any."""
    if isinstance(value, str):
        return path if UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and UNSTORABLE.search(key):
                return path
            found = find_nul(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_nul(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def type_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return None if kind is None else f"={kind}"


# The discriminator of the API's unions told apart by `type` (tools, content parts, formats):
# `Annotated[Annotated[A, Tag("=a")] | Annotated[B, Tag("=b")], BY_TYPE]`. Tags carry a leading
# '=' so error paths can drop them (`tools[0].function.name`, not
# `tools[0].function.function.name`); `=*` is a member for types registered at run time.
BY_TYPE = Discriminator(type_tag)
