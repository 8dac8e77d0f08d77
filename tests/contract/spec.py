"""The Assistants OpenAPI 3.1 spec as a response validator.

The spec ships with the tests (`tests/contract/assistants-openapi-2026.yaml`, OpenAI's
published document, MIT-licensed) so that a clone alone runs them; ASSISTANTS_OPENAPI_SPEC
points them at another copy. Schemas are not copied out of it: each operation's schema is
addressed by its JSON pointer inside the loaded document, and `$ref: '#/components/schemas/...'`
resolves against that same document through a `referencing` registry.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml  # type: ignore[import-untyped, unused-ignore]
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.exceptions import best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_ENV = "ASSISTANTS_OPENAPI_SPEC"
SPEC_NAME = "assistants-openapi-2026.yaml"
SPEC_URI = "urn:assistants-openapi"  # the base URI that the spec's `#/...` refs resolve against
ERROR_SCHEMA = "/components/schemas/ErrorResponse"
# The list envelope's cursor keys: see Spec.problems for the one deviation accepted on them.
LIST_CURSORS = ("first_id", "last_id")


def spec_path() -> Path:
    configured = os.environ.get(SPEC_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).with_name(SPEC_NAME)


def _pointer_part(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _unixtime(value: object) -> bool:
    """`format: unixtime` (an OpenAPI extra): whole seconds since the epoch, not milliseconds."""
    return not isinstance(value, int) or 0 <= value < 10**11


def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


class Spec:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        # Paths in the spec are relative to the server URL (https://api.openai.com/v1).
        self.prefix = urlsplit(document["servers"][0]["url"]).path.rstrip("/")
        resource = DRAFT202012.create_resource(document)
        self.registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
        self.formats = FormatChecker()
        self.formats.checks("unixtime")(_unixtime)
        self.formats.checks("uri")(_uri)

    def response_pointer(self, method: str, template: str) -> str:
        """Where the spec keeps the 200 application/json schema of an operation."""
        steps = ["paths", template, method.lower(), "responses", "200", "content",
                 "application/json", "schema"]
        node: Any = self.document
        for step in steps:
            if not isinstance(node, dict) or step not in node:
                raise LookupError(f"the spec has no {'/'.join(steps[:steps.index(step) + 1])}")
            node = node[step]
        return "/" + "/".join(_pointer_part(step) for step in steps)

    def validator(self, pointer: str) -> Draft202012Validator:
        return Draft202012Validator(
            {"$ref": f"{SPEC_URI}#{pointer}"}, registry=self.registry,
            format_checker=self.formats,
        )

    def problems(self, pointer: str, body: Any) -> list[str]:
        found = []
        for error in self.validator(pointer).iter_errors(body):
            if _empty_page_cursor(error, body) or _null_file_status_details(error, body):
                continue
            where = "/".join(str(p) for p in error.absolute_path) or "(body)"
            rule = "/".join(str(p) for p in error.absolute_schema_path)
            why = best_match(error.context) if error.context else None
            detail = f" (closest: {why.message})" if why else ""
            found.append(f"{where}: {error.message}{detail} [schema: {rule}]")
        return sorted(found)

    def response_problems(self, method: str, template: str, body: Any) -> list[str]:
        return self.problems(self.response_pointer(method, template), body)

    def error_problems(self, body: Any) -> list[str]:
        return self.problems(ERROR_SCHEMA, body)


def _empty_page_cursor(error: ValidationError, body: Any) -> bool:
    """Documented deviation: the spec types a list's `first_id`/`last_id` as plain strings, but
    the hosted service sent null for them on an empty page and the SDK models them as Optional.
    Only that case passes: a null cursor, at the top of a list body whose `data` is empty."""
    path = error.absolute_path
    return (
        error.validator == "type" and error.instance is None
        and len(path) == 1 and path[0] in LIST_CURSORS
        and isinstance(body, dict) and body.get("object") == "list" and body.get("data") == []
    )


def _null_file_status_details(error: ValidationError, body: Any) -> bool:
    """Documented deviation: the spec types a file's deprecated `status_details` as a string,
    but the hosted service sent `"status_details": null` (WIRE.md §5.6) and the SDK models it
    as Optional. Only a null `status_details` of a file object passes."""
    path = list(error.absolute_path)
    if error.validator != "type" or error.instance is not None or path[-1:] != ["status_details"]:
        return False
    owner = body
    for step in path[:-1]:
        owner = owner[step]
    return isinstance(owner, dict) and owner.get("object") == "file"


@cache
def load_spec(path: Path) -> Spec:
    with path.open(encoding="utf-8") as handle:
        return Spec(yaml.safe_load(handle))
