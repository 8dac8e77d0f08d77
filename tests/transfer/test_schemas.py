"""The documented bundle format is the one the server writes: docs/bundle/schemas/ holds the
schema each kind's table gives, and every record an export wrote is valid against its kind's."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator

from assistants_server.transfer.kinds import KINDS
from assistants_server.transfer.schemas import schema

DOCS = Path(__file__).resolve().parents[2] / "docs" / "bundle"


def test_the_documented_schemas_are_the_tables_schemas() -> None:
    documented = {p.name for p in (DOCS / "schemas").iterdir()}
    assert documented == {f"{kind.name}.schema.json" for kind in KINDS}
    for kind in KINDS:
        written = json.loads((DOCS / "schemas" / f"{kind.name}.schema.json").read_text())
        assert written == schema(kind), (
            f"{kind.name}: run `python -m assistants_server.transfer.schemas "
            "docs/bundle/schemas` and say in docs/bundle.md what changed")
        Draft202012Validator.check_schema(written)
    for kind in KINDS:  # every kind and its file are described
        assert f"`{kind.name}`" in (DOCS.parent / "bundle.md").read_text(), kind.name


def valid_records(bundle: Path) -> int:
    """How many records the bundle holds, each checked against its kind's schema."""
    checked = 0
    for path in sorted((bundle / "records").iterdir()):
        validator = Draft202012Validator(
            json.loads((DOCS / "schemas" / f"{path.stem}.schema.json").read_text()))
        for number, line in enumerate(path.read_text().splitlines(), 1):
            errors = [e.message for e in validator.iter_errors(json.loads(line))]
            assert errors == [], f"{path.name}:{number}: {errors}"
            checked += 1
    return checked
