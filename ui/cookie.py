"""The browser's identity cookie: a random secret the server sets (HttpOnly, SameSite=Lax) on a page load.

Installed the supported way: app.py's `app = st.App(__file__, middleware=identity_middleware())`, which
`streamlit run app.py` discovers and serves (streamlit/web/server/starlette/starlette_app.py, class App: user
middleware runs before Streamlit's own). So the very first page a browser loads already sets the cookie,
and the websocket that page opens carries it (st.context.cookies).
"""
from __future__ import annotations

import re
import secrets
from typing import Any, Awaitable, Callable

import streamlit as st

COOKIE = "vae_lab_browser"
MAX_AGE_S = 400 * 24 * 3600  # the longest lifetime Chromium keeps
_VALUE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

Scope = dict[str, Any]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def valid(value: object) -> bool:
    """Whether value looks like a secret this module made (anything else is replaced, never trusted)."""
    return isinstance(value, str) and bool(_VALUE.match(value))


def browser_secret() -> str | None:
    """The identity cookie this session's websocket request carried; None without one (AppTest: no request)."""
    value = st.context.cookies.get(COOKIE)
    return value if valid(value) else None


def new_secret() -> str:
    """A fresh identity: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


def set_cookie_header(value: str, https: bool) -> bytes:
    """The Set-Cookie header: script-proof (HttpOnly), not sent with cross-site subrequests (Lax)."""
    # Lax, not Strict: a Strict cookie is missing when a link from another site opens the app, and the
    # page load would then replace the browser's identity with a new one.
    secure = "; Secure" if https else ""
    return f"{COOKIE}={value}; Path=/; Max-Age={MAX_AGE_S}; HttpOnly; SameSite=Lax{secure}".encode("latin-1")


def request_cookie(scope: Scope) -> str | None:
    """The identity cookie an ASGI request carries, if any."""
    for name, raw in scope.get("headers", []):
        if name == b"cookie":
            for part in raw.decode("latin-1").split(";"):
                key, _, value = part.strip().partition("=")
                if key == COOKIE:
                    return value
    return None


class IdentityCookie:
    """ASGI middleware: an HTML page sent to a browser without a valid identity cookie sets one."""

    def __init__(self, app: Callable[..., Awaitable[None]]):
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable, send: Send) -> None:
        if scope["type"] != "http" or valid(request_cookie(scope)):
            await self.app(scope, receive, send)
            return
        header = set_cookie_header(new_secret(), scope.get("scheme") == "https")

        async def send_with_cookie(message: dict[str, Any]) -> None:
            # Pages only: assets fetched alongside the first page must not each set a different secret.
            if message["type"] == "http.response.start" and _is_page(scope, message):
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", header)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _is_page(scope: Scope, message: dict[str, Any]) -> bool:
    """A page load: the browser says so (a reload's 304 has no content type), or the response is HTML."""
    if (b"sec-fetch-dest", b"document") in scope.get("headers", []):
        return True
    return any(k == b"content-type" and v.startswith(b"text/html") for k, v in message.get("headers", []))


def identity_middleware() -> list:
    """What app.py hands to `st.App(..., middleware=...)`, Streamlit's supported way to wrap its server."""
    from starlette.middleware import Middleware

    return [Middleware(IdentityCookie)]
