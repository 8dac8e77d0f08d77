"""The JSON Schema of each record kind, made from its table, so that the documented format
(docs/bundle/) is the one the server writes and reads: a test holds the two together.

    python -m assistants_server.transfer.schemas docs/bundle/schemas
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Float, Integer, LargeBinary, String

from assistants_server.transfer.exporting import VERSION
from assistants_server.transfer.kinds import KINDS, Kind

# Filled in when a record leaves them out: see Kind.decode.
FILLED = {"pk", "project_id", "token_count"}


def _type(column: Column[Any]) -> dict[str, Any]:
    kind = column.type
    if isinstance(kind, JSON):
        return {"description": "any JSON value"}
    if isinstance(kind, LargeBinary):
        shape: dict[str, Any] = {"type": "string", "contentEncoding": "base64"}
    elif isinstance(kind, Boolean):
        shape = {"type": "boolean"}
    elif isinstance(kind, Integer):  # BigInteger too
        shape = {"type": "integer"}
    elif isinstance(kind, Float):
        shape = {"type": "number"}
    elif isinstance(kind, String):  # Text too
        shape = {"type": "string"} | ({"maxLength": kind.length} if kind.length else {})
    else:  # pragma: no cover - a new column type must be mapped here
        raise TypeError(f"{column.table.name}.{column.name}: {kind!r} has no JSON Schema type")
    if column.nullable:
        shape["type"] = [shape["type"], "null"]
    return shape


def required(column: Column[Any]) -> bool:
    return not (column.nullable or column.default is not None or column.name in FILLED)


def schema(kind: Kind) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:assistants-server:bundle:{VERSION}:{kind.name}",
        "title": f"A record of {kind.name} (bundle version {VERSION})",
        "description": f"One line of records/{kind.name}.jsonl: a row of the `{kind.name}` "
        f"table. Named in every database by: {', '.join(kind.identity)}.",
        "type": "object",
        "properties": {column.name: _type(column) for column in kind.columns},
        "required": [column.name for column in kind.columns if required(column)],
        "additionalProperties": False,
    }


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = directory / f"{kind.name}.schema.json"
        path.write_text(json.dumps(schema(kind), indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/bundle/schemas")):
        print(path)
