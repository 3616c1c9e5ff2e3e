"""Security headers on every answer: a strict Content-Security-Policy (no inline script or
style), no framing, no referrer beyond the origin, no content sniffing."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def content_security_policy(form_targets: Iterable[str] = ()) -> str:
    # A form's redirect is checked against form-action too: signing out sends the browser on
    # to the provider, so its origin is listed.
    targets = " ".join(["'self'", *form_targets])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            f"form-action {targets}",
            "frame-ancestors 'none'",
        ]
    )


# Swagger UI and ReDoc set styles from their scripts: their pages allow inline styles (never
# inline scripts), and ReDoc starts a worker from a blob.
DOCS_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)


class SecurityHeaders:
    """Adds the headers to every HTTP answer that does not set its own. The policy goes on
    everything under ``policy_prefix`` (the staff pages); pages that came before them (the
    dashboard, the public verification page) and the API documentation set their own."""

    def __init__(self, app: ASGIApp, *, policy: str, policy_prefix: str) -> None:
        self.app = app
        self.policy = policy
        self.policy_prefix = policy_prefix
        self.headers = {
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin-when-cross-origin",
            "X-Frame-Options": "DENY",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        headers_here = dict(self.headers)
        if path == self.policy_prefix or path.startswith(self.policy_prefix + "/"):
            headers_here["Content-Security-Policy"] = self.policy
            headers_here["Cross-Origin-Opener-Policy"] = "same-origin"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in headers_here.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)
