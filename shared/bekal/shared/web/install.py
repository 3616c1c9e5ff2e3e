"""What an app with staff pages gets: the page session, static files, sign-in, its pages."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from bekal.shared.problems import unexpected_problem
from bekal.shared.settings import Environment, Settings
from bekal.shared.web import signin
from bekal.shared.web.pages import STAFF, PageRouter, error_page
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
        if isinstance(router, PageRouter) and router.pages is not None:
            app.state.__dict__.setdefault("staff_pages", router.pages)
    install_error_pages(app)


def _is_page(request: Request) -> bool:
    path = request.url.path
    return path == STAFF or path.startswith(STAFF + "/")


async def _answer(answer: Response | Awaitable[Response]) -> Response:
    return await answer if inspect.isawaitable(answer) else answer


def install_error_pages(app: FastAPI) -> None:
    """An address under /staf the service does not have, or an error no page expected, is
    answered with a page in Bahasa Indonesia; the API keeps its problem+json."""
    api_http = app.exception_handlers[StarletteHTTPException]
    api_unexpected = app.exception_handlers[Exception]

    async def http_error(request: Request, exc: Exception) -> Response:
        if not _is_page(request) or not isinstance(exc, StarletteHTTPException):
            return await _answer(api_http(request, exc))
        detail = (
            "Alamat ini tidak ada. Periksa alamatnya, atau mulai dari halaman awal."
            if exc.status_code in (404, 405)
            else str(exc.detail)
        )
        return error_page(request, exc.status_code, detail)

    async def unexpected(request: Request, exc: Exception) -> Response:
        if not _is_page(request):
            return await _answer(api_unexpected(request, exc))
        problem = unexpected_problem(exc)
        if problem.status >= 500:
            # The request id names the log line of the error: the operator finds it by the code.
            code = structlog.contextvars.get_contextvars().get("request_id")
            quoted = f"sebutkan kode kejadian {code}" if code else "sebutkan waktunya"
            detail = (
                f"{problem.detail} Data yang Anda kirim belum tentu tersimpan: periksa dulu "
                f"sebelum mengirim lagi. Bila terulang, hubungi admin dan {quoted}."
            )
        else:
            detail = problem.detail
        return error_page(request, problem.status, detail)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def install_security_headers(app: FastAPI, settings: Settings) -> None:
    provider = []
    if settings.web_oidc_issuer:
        parts = urlsplit(settings.web_oidc_issuer)
        provider.append(f"{parts.scheme}://{parts.netloc}")
    app.add_middleware(
        SecurityHeaders, policy=content_security_policy(provider), policy_prefix=STAFF
    )
