"""A worker's reply turned into an ExecutionResult. The worker runs user code in its own
process, so its reply is untrusted input: every field is checked and bounded here."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .interface import ExecutionResult
from .wire import MAX_ERROR_CHARS, MAX_FILES_REPORTED, MAX_IMAGES, ProtocolError, truncate


def parse_reply(reply: dict[str, Any], max_output_chars: int) -> ExecutionResult:
    logs, error = reply.get("logs"), reply.get("error")
    images, files = reply.get("images"), reply.get("files")
    if not isinstance(logs, str) or not (error is None or isinstance(error, str)):
        raise ProtocolError("logs and error must be strings")
    if not isinstance(images, list) or not isinstance(files, list) or not all(
            isinstance(v, str) for v in (*images, *files)):
        raise ProtocolError("images and files must be lists of strings")
    try:
        pngs = [base64.b64decode(i, validate=True) for i in images[:MAX_IMAGES]]
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"an image is not base64: {exc}") from None
    # The worker already truncated; a reply forged by user code could be of any length.
    note_room = 100
    if len(logs) > max_output_chars + note_room:
        logs = truncate(logs, max_output_chars)
    return ExecutionResult(
        logs=_utf8(logs), images=pngs,
        files=[_utf8(f) for f in files[:MAX_FILES_REPORTED] if _plausible_path(f)],
        error=None if error is None else _utf8(error[-(MAX_ERROR_CHARS + note_room):]),
        restarted=False)


def _utf8(text: str) -> str:
    """JSON can carry lone surrogates (from a str user code built) that UTF-8 cannot."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _plausible_path(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and len(path) <= 4096 and "\0" not in path and not path.startswith("/") \
        and ".." not in parts
