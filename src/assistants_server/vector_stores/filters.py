"""Attribute filters of vector store search (`ComparisonFilter` / `CompoundFilter`), checked
when a search arrives and evaluated against each file's `attributes`."""

from __future__ import annotations

from typing import Any

from assistants_server.kit.errors import InvalidRequestError

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")


def check_filter(spec: Any, param: str = "filters") -> None:
    """Refuse a malformed filter before searching, naming the faulty part."""
    if not isinstance(spec, dict):
        raise InvalidRequestError(f"Invalid '{param}': expected an object.", param=param)
    kind = spec.get("type")
    if kind in ("and", "or"):
        filters = spec.get("filters")
        if not isinstance(filters, list) or set(spec) - {"type", "filters"}:
            raise InvalidRequestError(
                f"Invalid '{param}': a compound filter has 'type' and a 'filters' array.",
                param=param)
        for i, item in enumerate(filters):
            check_filter(item, f"{param}.filters[{i}]")
        return
    if kind not in COMPARISONS:
        raise InvalidRequestError(
            f"Invalid '{param}.type': '{kind}'. Expected one of: "
            f"{', '.join(COMPARISONS)}, and, or.", param=f"{param}.type")
    if not isinstance(spec.get("key"), str) or "value" not in spec or (
            set(spec) - {"type", "key", "value"}):
        raise InvalidRequestError(
            f"Invalid '{param}': a comparison filter has 'type', 'key' and 'value'.",
            param=param)
    if kind in ("in", "nin") and not isinstance(spec["value"], list):
        raise InvalidRequestError(f"Invalid '{param}.value': '{kind}' compares with an array.",
                                  param=f"{param}.value")


def matches(spec: dict[str, Any], attributes: dict[str, Any]) -> bool:
    kind = spec["type"]
    if kind == "and":
        return all(matches(item, attributes) for item in spec["filters"])
    if kind == "or":
        return any(matches(item, attributes) for item in spec["filters"])
    if spec["key"] not in attributes:
        return kind in ("ne", "nin")
    have, want = attributes[spec["key"]], spec["value"]
    if kind == "eq":
        return bool(have == want)
    if kind == "ne":
        return bool(have != want)
    if kind == "in":
        return have in want
    if kind == "nin":
        return have not in want
    try:
        if kind == "gt":
            return bool(have > want)
        if kind == "gte":
            return bool(have >= want)
        if kind == "lt":
            return bool(have < want)
        return bool(have <= want)
    except TypeError:
        return False  # a string compared with a number matches nothing
