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


# Data exceptions: SQLSTATE class 22, and what the drivers raise before a value reaches the server.
_UNSTORABLE = {
    "DataError",
    "CharacterNotInRepertoireError",
    "UntranslatableCharacterError",
    "NumericValueOutOfRangeError",
    "OverflowError",
}


def is_unstorable_value(exc: BaseException) -> bool:
    """True when the database refused a value itself, as opposed to being unreachable."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if type(current).__name__ in _UNSTORABLE:
            return True
        if str(getattr(current, "sqlstate", "") or "").startswith("22"):
            return True
        stack += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return False


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
        if exc.status_code == 413:  # the body cap (max_body_size), before the body is read
            return problem_response(
                Problem(
                    "Isi permintaan melebihi batas ukuran untuk alamat ini.",
                    status=413,
                    slug="content-too-large",
                    title="Isi permintaan terlalu besar",
                ),
                request,
            )
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
        return problem_response(unexpected_problem(exc), request)


def unexpected_problem(exc: BaseException) -> Problem:
    """What an exception no handler expected is answered as (logged here): the staff pages
    answer it with the same status and words, as a page."""
    if is_unstorable_value(exc):
        # A value the schema let through but the database cannot hold (a NUL character,
        # an integer beyond its column): the client's input, so 422 rather than 500.
        log.warning("unstorable_value", error=str(exc).splitlines()[0][:300])
        return RuleViolation(
            "Nilai tidak dapat disimpan atau dicari: karakter NUL, atau angka di luar "
            "batas yang diizinkan.",
            slug="unstorable-value",
        )
    if is_unavailable(exc):
        log.warning("database_unavailable", error=str(exc)[:300])
        return ServiceUnavailable("Basis data tidak dapat dihubungi; coba lagi sebentar lagi.")
    log.exception("unhandled_error", exc_info=exc)
    return Problem(
        "Terjadi kesalahan internal.",
        status=500,
        slug="internal-error",
        title="Kesalahan internal",
    )


# --- what the OpenAPI documents say about errors ------------------------------------------

_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; ``errors`` names the fields at fault.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                },
            },
        },
    },
}
_PROBLEM_DESCRIPTIONS = {
    400: "The body could not be read (not JSON, or not the declared media type)",
    401: "No valid bearer token",
    403: "The token's side or roles do not admit this",
    404: "Not found (or not visible to the caller)",
    409: "Not allowed in the current state; `detail` says why",
    422: "Invalid input; `errors` names each field",
    429: "Too many requests; see Retry-After",
    503: "The database or the broker is unavailable; try again shortly",
}
_WRITES = {"post", "put", "patch", "delete"}


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Declare the problem+json answers every operation can give, in place and returned.

    FastAPI documents only the success and a plain-JSON 422; the handlers above answer every
    error as problem+json, so clients and contract tests need the real media type and shape.
    """
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = _PROBLEM_SCHEMA
    ref = {"$ref": "#/components/schemas/Problem"}
    for item in openapi.get("paths", {}).values():
        for method, operation in item.items():
            if method not in {"get", "put", "post", "delete", "patch", "head", "options"}:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            statuses = {503}
            if operation.get("security"):
                statuses |= {401, 403}
            if operation.get("parameters") or operation.get("requestBody") or "422" in responses:
                statuses.add(422)
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                statuses.add(404)
            if method in _WRITES:
                statuses |= {404, 409}
            if operation.get("requestBody"):
                statuses.add(400)
            if "429" in responses:
                statuses.add(429)
            for status in sorted(statuses):
                entry = responses.setdefault(
                    str(status), {"description": _PROBLEM_DESCRIPTIONS[status]}
                )
                declared = set(entry.get("content", {})) - {"application/json"}
                if not declared:  # a page's own error (HTML) stays as the route declares it
                    entry["content"] = {PROBLEM_JSON: {"schema": ref}}
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return openapi
