"""What a modify request does to an object's `metadata`."""

from __future__ import annotations

from assistants_server.kit.errors import InvalidRequestError
from assistants_server.kit.validation import MAX_METADATA_PAIRS


def merged_metadata(held: dict[str, str], sent: dict[str, str] | None) -> dict[str, str]:
    """The metadata a modify request leaves on its object: the object's pairs, with those
    sent added or changed; `{}` or null changes nothing.

    Merge, not replace: the hosted reference never said which, and the one observed account,
    a compatibility suite checked against the hosted service in 2024, expects pairs that were
    not sent to stay. A merge also never drops what a client did not mention: code that sends
    only the key it changes keeps the others, and code that reads the map, changes a value and
    sends it all back gets that change either way. Removing a key is what it cannot do, as in
    that account."""
    merged = {**held, **(sent or {})}
    if len(merged) > MAX_METADATA_PAIRS:
        raise InvalidRequestError(
            f"Invalid 'metadata': too many properties. The object has {len(held)} metadata "
            f"pairs and this update would make {len(merged)}; at most {MAX_METADATA_PAIRS} are "
            "allowed. Updates add to or change the pairs it has.", param="metadata",
            code="object_above_max_properties")
    return merged
