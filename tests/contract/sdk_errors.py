"""Reading the server's error out of an SDK exception the same way on every SDK version.

SDK 3.x puts the server's message in `exc.message` ("Error code: 400 - <message>"); 1.59.4
puts the whole error object there. Both keep the server's error object in `exc.body`.
"""

from __future__ import annotations

from typing import Any


def server_message(exc: Any) -> str:
    body = exc.body
    assert isinstance(body, dict), f"error body is not the JSON envelope: {body!r}"
    return str(body["message"])
