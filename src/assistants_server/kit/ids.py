"""Object ids in the service's formats: a type prefix followed by 24 random base62 characters."""

from __future__ import annotations

import secrets
import string
from typing import Literal

_ALPHABET = string.ascii_letters + string.digits

Prefix = Literal["asst_", "thread_", "msg_", "run_", "step_", "call_", "file-", "vs_", "vsfb_",
                 "chatcmpl-", "proj_", "key_", "svc_acct_"]


def new_id(prefix: Prefix) -> str:
    # One read of the system's randomness rather than one per character. Bytes below 248
    # (4 x 62) map onto the alphabet evenly; the rest are skipped.
    while len(chars := [_ALPHABET[b % 62] for b in secrets.token_bytes(32) if b < 248]) < 24:
        pass
    return prefix + "".join(chars[:24])


def new_request_id() -> str:
    return "req_" + secrets.token_hex(16)


def check_id(value: str, prefix: Prefix, param: str) -> str:
    """Refuse an id of the wrong kind the way the service did (a 400 naming the parameter)."""
    if not value.startswith(prefix):
        from assistants_server.kit.errors import InvalidRequestError

        raise InvalidRequestError(
            f"Invalid '{param}': '{value}'. Expected an ID that begins with "
            f"'{prefix.rstrip('_-')}'.",
            param=param,
        )
    return value
