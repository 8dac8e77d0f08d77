"""Which scope a request needs, in the names OpenAI gave restricted keys' permissions.

A key made without scopes may do everything; one made with scopes only what they name, a
`.write` scope including its `.read`. Runs (and their steps) are a group of their own, so a
key can read threads without starting runs on them. A read-only key holds every `.read`.
"""

from __future__ import annotations

import re

GROUPS = ("assistants", "threads", "runs", "files", "vector_stores")
READ_ONLY = frozenset(f"api.{group}.read" for group in (*GROUPS, "model"))
ALL = frozenset({*READ_ONLY, *(f"api.{group}.write" for group in GROUPS), "api.model.request"})
_RUNS = re.compile(r"^/v1/threads/(?:[^/]+/)?runs(?:/|$)")
_READS = ("GET", "HEAD")


def required_scope(method: str, path: str) -> str | None:
    """The scope `method path` needs; None for a path no scope guards."""
    if path.startswith(("/v1/models", "/v1/chat/completions", "/v1/embeddings")):
        return "api.model.read" if path.startswith("/v1/models") else "api.model.request"
    group = "runs" if _RUNS.match(path) else next(
        (g for g in GROUPS if path.startswith(f"/v1/{g}")), None)
    if group is None:
        return None
    search = group == "vector_stores" and path.endswith("/search")
    return f"api.{group}.{'read' if method in _READS or search else 'write'}"


def missing(scopes: frozenset[str] | None, needed: str | None) -> bool:
    if scopes is None or needed is None:
        return False
    return needed not in scopes and needed.replace(".read", ".write") not in scopes


def check_scopes(given: list[str]) -> list[str]:
    """`given` without duplicates, or ValueError naming the first unknown scope."""
    for scope in given:
        if scope not in ALL:
            raise ValueError(f"unknown scope '{scope}'; scopes are: {', '.join(sorted(ALL))}")
    return sorted(set(given))
