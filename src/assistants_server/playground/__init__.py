"""The playground: a page to build, try and debug assistants in a browser, served by the server
itself at /playground (and / redirects there).

It is this package's `static/` directory: plain HTML, CSS and JavaScript modules, no build step
and nothing fetched from elsewhere, so it works offline. The page calls only the public `/v1`
API, with the key its user types in (kept in the tab's session storage), so it can show and
do nothing that key could not. The pages are served without a key; a content security policy
keeps them from loading or sending anything outside this server.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE = Path(__file__).parent / "static"
POLICY = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
     b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class _WithPolicy:
    """The page's files, each answered with the headers of `POLICY`."""

    def __init__(self, files: ASGIApp) -> None:
        self.files = files

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *POLICY]
            await send(message)

        await self.files(scope, receive, send_with_policy)


def install_playground(app: FastAPI) -> None:
    app.mount("/playground", _WithPolicy(StaticFiles(directory=PAGE, html=True)),
              name="playground")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/playground/")
