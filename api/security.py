"""What every answer of the service carries and what every request must be, before any route
runs: the allowed hosts (DNS rebinding), security headers (a strict CSP: the tablet page runs
no inline script or style, talks only to its own origin and is never framed), JSON only for
state-changing requests (a form or a text/plain post from another page on the same address is
refused), and a bounded body. Plain ASGI middleware: it wraps HTTP and WebSocket alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import COOKIE

MAX_BODY_BYTES = 1024 * 1024  # a preset's YAML (200,000 characters) escaped in JSON fits well
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "media-src 'self'",
    "manifest-src 'self'",
    "worker-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000")
NO_STORE = (b"cache-control", b"no-store")  # health information is never kept in a cache
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH"})


def _error(status: int, detail: str) -> Response:
    return Response(json.dumps({"detail": detail}), status_code=status, media_type="application/json")


class SecurityHeaders:
    """Adds the security headers to every HTTP answer (HSTS on HTTPS; no-store on the API),
    and renews the pairing cookie when a route asked for it (`request.state.renew_cookie`)."""

    def __init__(self, app: ASGIApp, *, cookie_max_age_s: int) -> None:
        self.app = app
        self.cookie_max_age_s = cookie_max_age_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        path: str = scope.get("path", "")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # A route serving a self-contained document (the monitoring record, with its own
                # style) states its own, stricter policy: it is kept, not joined by this one.
                own_policy = any(k.lower() == b"content-security-policy" for k, _ in headers)
                headers += [hv for hv in HEADERS if not (own_policy and hv[0] == b"content-security-policy")]
                if https:
                    headers.append(HSTS)
                if path.startswith("/api/") or path == "/healthz":
                    headers.append(NO_STORE)
                token = (scope.get("state") or {}).get("renew_cookie")
                if token and message["status"] < 400:
                    headers.append((b"set-cookie", pairing_cookie(token, self.cookie_max_age_s, https).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def pairing_cookie(token: str, max_age_s: int, secure: bool) -> str:
    """The token cookie: HttpOnly, SameSite=Strict, Secure on HTTPS, as long as the pairing lasts."""
    response = Response()
    response.set_cookie(COOKIE, token, max_age=max_age_s, httponly=True, samesite="strict", secure=secure)
    return response.headers["set-cookie"]


class RequireJSON:
    """POST, PUT and PATCH to the API only as ``application/json``, with or without a body:
    a browser sends that type to another origin only after a CORS preflight, which this
    service never grants. Bodies are read up to `MAX_BODY_BYTES` before the route runs (413
    beyond)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in STATE_CHANGING \
                or not scope.get("path", "").startswith("/api/"):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"] if k.lower() in (b"content-type", b"content-length")}
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if media_type != b"application/json":
            shown = media_type.decode("latin-1")[:60] or "none"
            await _error(415, f"send this request as JSON (Content-Type: application/json), "
                              f"even without a body; got {shown}")(scope, receive, send)
            return
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _error(413, f"the body is larger than {self.max_body_bytes:,} bytes")(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _error(413, f"the body is larger than {self.max_body_bytes:,} bytes")(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def allowed_hosts(names: Sequence[str]) -> list[str]:
    """The Host values the service answers: its names and addresses, and loopback."""
    out: list[str] = []
    for name in [*names, *LOOPBACK_HOSTS]:
        n = name.lower().rstrip(".")
        if ":" in n and not n.startswith("["):
            n = f"[{n}]"  # an IPv6 address in a Host header
        out += [n, n.strip("[]")]
    return list(dict.fromkeys(out))


class HostCheck(TrustedHostMiddleware):
    """Starlette's TrustedHostMiddleware over ``names`` and loopback: any other Host gets 400."""

    def __init__(self, app: ASGIApp, *, names: Sequence[str]) -> None:
        super().__init__(app, allowed_hosts=allowed_hosts(names), www_redirect=False)
