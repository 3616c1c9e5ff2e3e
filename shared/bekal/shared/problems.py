"""RFC 9457 problem details: every error a client sees, with a stable ``type`` per kind of error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bekal.shared.db import is_unavailable

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://bekal.id/problems/"


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem+json document."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Permintaan tidak valid"

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        slug: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})  # sent with the answer, e.g. Retry-After
        if status is not None:
            self.status = status
        if slug is not None:
            self.slug = slug
        if title is not None:
            self.title = title
        self.extensions = extensions

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Data tidak ditemukan"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Konflik dengan keadaan data"


class RuleViolation(Problem):
    status, slug, title = 422, "rule-violation", "Melanggar aturan"


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Perlu autentikasi"


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Akses ditolak"


class ServiceUnavailable(Problem):
    status, slug, title = 503, "service-unavailable", "Layanan sementara tidak tersedia"


class TooManyRequests(Problem):
    status, slug, title = 429, "too-many-requests", "Terlalu banyak permintaan"


def field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        out.append(
            {
                "field": ".".join(loc) or "body",
                "message": err.get("msg", "invalid"),
                "code": err.get("type", ""),
            }
        )
    return out


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else {}
    headers.update(problem.headers)
    return JSONResponse(
        problem.body(str(request.url.path) if request else None),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(exc)
        names = ", ".join(sorted({e["field"] for e in errors}))
        return problem_response(
            Problem(
                f"Data tidak valid pada: {names}",
                status=422,
                slug="validation-error",
                title="Data tidak valid",
                errors=errors,
            ),
            request,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slugs = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized", 403: "forbidden"}
        return problem_response(
            Problem(
                str(exc.detail),
                status=exc.status_code,
                slug=slugs.get(exc.status_code, "http-error"),
                title=str(exc.detail),
            ),
            request,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_unavailable(exc):
            log.warning("database_unavailable", error=str(exc)[:300])
            return problem_response(
                ServiceUnavailable("Basis data tidak dapat dihubungi; coba lagi sebentar lagi."),
                request,
            )
        log.exception("unhandled_error")
        return problem_response(
            Problem(
                "Terjadi kesalahan internal.",
                status=500,
                slug="internal-error",
                title="Kesalahan internal",
            ),
            request,
        )
