"""Migrations only add: a release's processes keep serving on the schema the next release
migrated (db/migrate.py, for upgrades that run both side by side). A migration's `upgrade` may
create tables, columns (nullable or with a default) and indexes; it drops, renames and alters
nothing an earlier release reads."""

from __future__ import annotations

import ast
from pathlib import Path

VERSIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"
REMOVING = {"drop_table", "drop_column", "rename_table", "alter_column", "drop_constraint",
            "execute"}  # raw SQL could do any of these
# Raw SQL read and found to only add, with why.
REVIEWED_SQL = {
    "0005_search_chunks.py": "full-text search (FTS5 / tsvector) of the table it creates"}


def _upgrade_calls(path: Path) -> list[tuple[str, ast.Call]]:
    tree = ast.parse(path.read_text())
    [upgrade] = [node for node in tree.body
                 if isinstance(node, ast.FunctionDef) and node.name == "upgrade"]
    return [(node.func.attr, node) for node in ast.walk(upgrade)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)]


def _adds_a_required_column_without_default(call: ast.Call) -> bool:
    column = next((arg for arg in call.args if isinstance(arg, ast.Call)), None)
    if column is None:
        return False
    keywords = {k.arg: k.value for k in column.keywords}
    required = isinstance(keywords.get("nullable"), ast.Constant) and \
        keywords["nullable"].value is False
    return required and "server_default" not in keywords


def test_every_migration_after_the_first_only_adds() -> None:
    scripts = sorted(VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert len(scripts) >= 12
    for script in scripts[1:]:
        for name, call in _upgrade_calls(script):
            if name == "execute" and script.name in REVIEWED_SQL:
                continue
            assert name not in REMOVING, f"{script.name}: upgrade() calls {name}"
            if name == "add_column":
                assert not _adds_a_required_column_without_default(call), (
                    f"{script.name}: a NOT NULL column without a server default breaks the "
                    "previous release's inserts")
