"""What an app with staff pages gets: the page session, static files, sign-in, its pages."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from bekal.shared.settings import Environment, Settings
from bekal.shared.web import signin
from bekal.shared.web.pages import STAFF
from bekal.shared.web.security import SecurityHeaders, content_security_policy

SESSION_COOKIE = "bekal_staf"


def install_pages(app: FastAPI, settings: Settings, routers: Sequence[APIRouter]) -> None:
    app.state.web_oauth = signin.oauth_client(settings)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.web_session_secret,
        session_cookie=SESSION_COOKIE,
        max_age=settings.web_session_max_age_seconds,
        path=STAFF,
        same_site="lax",
        https_only=settings.environment is not Environment.DEVELOPMENT,
    )
    app.mount(
        f"{STAFF}/static",
        StaticFiles(directory=Path(__file__).parent / "static"),
        name="staff-static",
    )
    app.include_router(signin.router)
    if settings.environment is not Environment.PRODUCTION:
        app.include_router(signin.dev_router)
    for router in routers:
        app.include_router(router)


def install_security_headers(app: FastAPI, settings: Settings) -> None:
    provider = []
    if settings.web_oidc_issuer:
        parts = urlsplit(settings.web_oidc_issuer)
        provider.append(f"{parts.scheme}://{parts.netloc}")
    app.add_middleware(
        SecurityHeaders, policy=content_security_policy(provider), policy_prefix=STAFF
    )
