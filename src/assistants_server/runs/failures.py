"""Why a run fails: the one vocabulary of `last_error`, as the hosted service reported it.

`code` is one of the service's three (`server_error`, `rate_limit_exceeded`,
`invalid_prompt`); `message` says what happened and what to do. A backend's own failure
(`BackendError`) carries its code and message and becomes `last_error` through `from_backend`.
"""

from __future__ import annotations

from typing import Literal

Code = Literal["server_error", "rate_limit_exceeded", "invalid_prompt"]


LastError = dict[str, str]  # {"code": ..., "message": ...}


def failure(code: Code, message: str) -> LastError:
    return {"code": code, "message": message}


def from_backend(code: str, message: str) -> LastError:
    """A backend's failure as the run's `last_error`."""
    return {"code": code, "message": message}


# A fault of this server while driving the run (its log has the traceback).
FAULT = failure("server_error", "The server had an error while processing this run.")
# The process driving the run stopped (its lease ran out) before the run ended.
DIED = failure("server_error", "The server process running this run stopped before it "
               "finished. Create a new run to try again.")
# The model's window cannot hold even the newest message with the instructions and tools.
TOO_LONG = failure("invalid_prompt", "The newest message of the thread, with the instructions "
                   "and tools, does not fit the model's context window (leaving room for the "
                   "answer): shorten them, or raise the backend's context_window.")


def too_many_rounds(rounds: int) -> LastError:
    return failure("server_error", f"The model called tools in more than {rounds} rounds "
                   "without answering; the run was stopped.")
