"""Errors users see, in the service's envelope: `{"error": {message, type, param, code}}`.

Services raise `APIError` subclasses; one set of handlers renders them, FastAPI's own
validation errors and any unexpected exception in that envelope, so a client never sees
`{"detail": ...}` or an HTML page.
"""

from __future__ import annotations

import errno
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistants_server.kit.validation import describe_validation_error


class APIError(Exception):
    status_code = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers  # sent with the answer (a rate limit's x-ratelimit-*)
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, self.param, self.code)


class InvalidRequestError(APIError):
    status_code = 400


class AuthenticationError(APIError):
    status_code = 401


class PermissionDeniedError(APIError):
    status_code = 403


class NotFoundError(APIError):
    status_code = 404


class RateLimitError(APIError):
    status_code = 429
    error_type = "requests"


class PayloadTooLargeError(APIError):
    status_code = 413


class BackendUnavailableError(APIError):
    status_code = 502
    error_type = "server_error"


def error_body(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def file_too_large(limit: int, size: int | None = None) -> PayloadTooLargeError:
    given = f"{size} bytes, " if size is not None else ""
    return PayloadTooLargeError(
        f"File is too large: {given}over this server's limit of {limit} bytes "
        "(ASSISTANTS_MAX_UPLOAD_BYTES).", param="file", code="file_too_large")


def not_found(kind: str, object_id: str, param: str | None = None) -> NotFoundError:
    return NotFoundError(f"No {kind} found with id '{object_id}'.", param=param)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(StaleDataError, _concurrent_change)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OSError, _out_of_space)
    app.add_exception_handler(SQLAlchemyError, _out_of_space)


async def _out_of_space(_request: Request, exc: Exception) -> JSONResponse:
    """A full disk (the file store's, or the database's) is 507 saying so, not a bare 500;
    anything else goes on to the 500 of a fault."""
    if not out_of_space(exc):
        raise exc
    body = error_body("The server is out of storage space, so nothing was saved. Retry later; "
                      "the operator must free or add disk space.", "server_error",
                      code="insufficient_storage")
    return JSONResponse(body, status_code=507, headers={"x-should-retry": "false"})


def out_of_space(exc: BaseException | None) -> bool:
    """Whether `exc`, or what caused it, is a disk or database out of space."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(exc) or getattr(exc, "sqlstate", None) == "53100":
            return True  # SQLite's SQLITE_FULL; PostgreSQL's disk_full
        exc = getattr(exc, "orig", None) or exc.__cause__
        seen += 1
    return False


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIError)
    headers = {"x-should-retry": "false"} if exc.status_code >= 500 else exc.headers
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)


async def _concurrent_change(_request: Request, _exc: Exception) -> JSONResponse:
    # A transient race (the executor moved the run meanwhile): 409 is what the SDK retries.
    body = error_body("The object changed while this request was updating it. Retry the "
                      "request.", "invalid_request_error", code="concurrent_modification")
    return JSONResponse(body, status_code=409)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message, param, code = describe_validation_error(exc.errors())
    return JSONResponse(error_body(message, "invalid_request_error", param, code), status_code=400)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code in (404, 405):
        message = f"Invalid URL ({request.method} {request.url.path})"
        return JSONResponse(error_body(message, "invalid_request_error"), status_code=404)
    return JSONResponse(
        error_body(str(exc.detail), "invalid_request_error"), status_code=exc.status_code
    )
