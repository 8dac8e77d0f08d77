"""The gate every request passes: request id, API key and its permissions, beta header and
body size. Who is calling (a `Principal`) is left in the request's state for the endpoints.

A plain ASGI middleware rather than Starlette's BaseHTTPMiddleware, so streamed responses pass
through untouched and the per-request cost stays a few dict operations.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from urllib.parse import unquote

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistants_server.auth.keys import KeyStore, Principal
from assistants_server.auth.scopes import missing, required_scope
from assistants_server.kit.errors import (
    APIError,
    AuthenticationError,
    InvalidRequestError,
    PayloadTooLargeError,
    error_body,
    file_too_large,
)
from assistants_server.kit.ids import new_request_id
from assistants_server.kit.validation import UNSTORABLE
from assistants_server.logs import REQUEST_ID

log = logging.getLogger(__name__)
BETA_PREFIXES = ("/v1/assistants", "/v1/threads")
UPLOAD_PATH = "/v1/files"
ADMIN_PREFIX = "/v1/organization/"
UPLOAD_FRAMING = 64 * 1024
_V2_HINT = "Please try again by setting the header 'OpenAI-Beta: assistants=v2'."


class GateMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        require_beta_header: bool,
        max_upload_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes or max_body_bytes
        # An upload's body is its file plus the multipart framing around it.
        self.max_upload_body = self.max_upload_bytes + UPLOAD_FRAMING
        self.require_beta_header = require_beta_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        REQUEST_ID.set(request_id)  # on every log line of this request (its own task)
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = int((time.perf_counter() - started) * 1000)
                message.setdefault("headers", [])
                message["headers"] += [
                    (b"x-request-id", request_id.encode()),
                    (b"openai-version", b"2020-10-01"),
                    (b"openai-processing-ms", str(elapsed).encode()),
                ]
            await send(message)

        headers = Headers(scope=scope)
        upload = scope["path"] == UPLOAD_PATH and scope["method"] == "POST"
        too_large = (partial(file_too_large, self.max_upload_bytes) if upload
                     else partial(_too_large, self.max_body_bytes))
        try:
            if scope["path"].startswith("/v1/"):
                scope["state"]["principal"] = await _authorize(scope, headers)
            self._check(scope["path"], headers, self.max_upload_body if upload else
                        self.max_body_bytes, too_large)
            _check_url(scope["path"], scope.get("query_string", b""))
            if "content-length" not in headers and scope["method"] in ("POST", "PUT", "PATCH"):
                # An upload streams on to its parser (which spools to disk), counted; any
                # other body is small and is read here.
                receive = (_counted(receive, self.max_upload_body, too_large) if upload
                           else await self._buffer_chunked(receive))
        except APIError as exc:
            await JSONResponse(exc.body(), exc.status_code)(scope, receive, send_with_headers)
            return
        started_response = False

        async def tracking_send(message: Message) -> None:
            nonlocal started_response
            started_response = started_response or message["type"] == "http.response.start"
            await send_with_headers(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            # Rendered here, inside the gate, so even a bug's 500 has a request id and tells
            # the SDK not to repeat the request.
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started_response:
                raise
            body = error_body("The server had an error while processing your request. Sorry "
                              f"about that! Quote request id {request_id} when reporting it.",
                              "server_error")
            await JSONResponse(body, 500, headers={"x-should-retry": "false"})(
                scope, receive, send_with_headers)

    def _check(self, path: str, headers: Headers, limit: int,
               too_large: Callable[[], APIError]) -> None:
        if not path.startswith("/v1/"):
            return
        if self.require_beta_header and path.startswith(BETA_PREFIXES):
            _check_beta(headers.get("openai-beta"))
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise too_large()

    async def _buffer_chunked(self, receive: Receive) -> Receive:
        """Read a body sent without Content-Length, refusing it once it passes the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return _replay([message], receive)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _too_large(self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                return _replay([body], receive)


async def _authorize(scope: Scope, headers: Headers) -> Principal:
    """Who calls, and whether they may: admin keys only on /v1/organization, project keys
    (and the keyless default) everywhere else, a restricted key only within its scopes."""
    keys: KeyStore = scope["app"].state.keys
    principal = await keys.principal(headers.get("authorization", ""))
    path = scope["path"]
    if path.startswith(ADMIN_PREFIX):
        if principal.kind != "admin":
            raise AuthenticationError(
                "This endpoint needs an admin API key (sk-admin-...), and a project's key or "
                "no key was given. Create one with `assistants-server admin-keys create`, or "
                "configure ASSISTANTS_ADMIN_KEYS.", code="invalid_api_key")
        return principal
    if principal.kind == "admin":
        raise AuthenticationError(
            "Admin API keys can only be used on /v1/organization endpoints. Use a project's "
            "API key for this endpoint.", code="invalid_api_key")
    needed = required_scope(scope["method"], path)
    if missing(principal.scopes, needed):
        raise AuthenticationError(
            f"You have insufficient permissions for this operation. Missing scopes: {needed}. "
            "This API key is restricted; use a key whose scopes include it.")
    return principal


def _counted(receive: Receive, limit: int, too_large: Callable[[], APIError]) -> Receive:
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        size += len(message.get("body", b""))
        if size > limit:
            raise too_large()
        return message

    return counted


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay


def _check_beta(value: str | None) -> None:
    betas = [part.strip() for part in (value or "").split(",")]
    if "assistants=v2" in betas:
        return
    if "assistants=v1" in betas:
        raise InvalidRequestError(
            f"The v1 Assistants API has been deprecated. {_V2_HINT} See the migration guide for "
            "more information: https://platform.openai.com/docs/assistants/migration.",
            code="invalid_beta",
        )
    raise InvalidRequestError(
        f"You must provide the 'OpenAI-Beta' header to access the Assistants API. {_V2_HINT}",
        code="invalid_beta",
    )


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"The request body is larger than this server accepts ({limit} bytes). Send a smaller "
        "body, or raise ASSISTANTS_MAX_BODY_BYTES (ASSISTANTS_MAX_UPLOAD_BYTES for files) on "
        "the server.",
        code="request_too_large",
    )


def _check_url(path: str, query: bytes) -> None:
    """An id or cursor holding NUL or an unpaired surrogate (which no database stores) is
    the client's mistake, refused here for every route alike, not a database error."""
    decoded = unquote(query.decode("latin-1"), errors="surrogatepass")
    if UNSTORABLE.search(path) or UNSTORABLE.search(decoded):
        raise InvalidRequestError("Invalid URL: the path or query holds a NUL character or an "
                                  "unpaired surrogate, which no id or cursor contains.")
