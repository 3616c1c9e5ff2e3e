"""Rendering a page, who is signed in, what they may open, CSRF on every form.

A page router is made with ``page_router()``: its routes check the CSRF token of every form,
and answer a problem raised anywhere below them (NotFound, Forbidden, as the API raises them)
with the page of that error, or send a person not signed in to the sign-in page.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bekal.shared.auth import Ministry, Principal, Role, admit
from bekal.shared.problems import Forbidden, NotFound, Problem
from bekal.shared.web.forms import refuse_control_characters_in_form

HERE = Path(__file__).parent
STAFF = "/staf"  # every page lives under it
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MINISTRY_NAMES = {
    Ministry.CORRECTIONS: "Pemasyarakatan",
    Ministry.INDUSTRY: "Perindustrian",
}
ROLE_NAMES = {
    Role.REGISTRY_ADMIN: "Admin registri",
    Role.FACILITY_OFFICER: "Petugas fasilitas",
    Role.TRAINING_ADMIN: "Admin pelatihan",
    Role.TRAINING_OFFICER: "Petugas pelatihan",
    Role.FIELD_OFFICER: "Petugas lapangan",
    Role.CERTIFICATION_ADMIN: "Admin sertifikasi",
    Role.REPORTING_VIEWER: "Pembaca laporan",
    Role.OPERATOR: "Operator",
}


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    # Shown only to a principal the check admits (the same rule as the pages behind it).
    ministry: Ministry | None = None
    roles: tuple[str, ...] = ()
    # Addresses of the section beyond ``href`` and what lies under it (regular expressions
    # matched from the start of the path): a facility's candidates belong to "candidates".
    also: tuple[str, ...] = ()
    # Addresses under ``href`` that belong to another section.
    not_under: tuple[str, ...] = ()

    def is_current(self, path: str) -> bool:
        """Whether ``path`` is a page of this item's section (the navigation marks it)."""
        if any(re.match(pattern, path) for pattern in self.also):
            return True
        if any(re.match(pattern, path) for pattern in self.not_under):
            return False
        return path == self.href or path.startswith(self.href + "/")

    def shown_to(self, principal: Principal | None) -> bool:
        if principal is None:
            return False
        try:
            admit(principal, ministry=self.ministry, roles=self.roles)
        except Forbidden:
            return False
        return True


class SignInRequired(Exception):
    """Nobody is signed in: the page sends the browser to the sign-in page."""


# --- the page session ----------------------------------------------------------------------


def session_principal(request: Request) -> Principal | None:
    data = request.session.get("principal")
    if not isinstance(data, dict):
        return None
    try:
        return Principal(
            subject=str(data["sub"]),
            ministry=Ministry(data["ministry"]),
            roles=frozenset(data["roles"]),
            facilities=frozenset(data["facilities"]),
            claims={"name": data.get("name")},
        )
    except (KeyError, ValueError, TypeError):
        return None


def start_session(request: Request, principal: Principal, **extra: Any) -> None:
    """A new session for ``principal``: what an earlier one held (CSRF token included) goes."""
    request.session.clear()
    request.session["principal"] = {
        "sub": principal.subject,
        "ministry": principal.ministry.value,
        "roles": sorted(principal.roles),
        "facilities": sorted(principal.facilities),
        "name": principal.claims.get("name") or principal.subject,
        **extra,
    }


async def page_principal(request: Request) -> Principal:
    principal = session_principal(request)
    if principal is None:
        raise SignInRequired
    request.state.principal = principal
    return principal


PagePrincipal = Annotated[Principal, Depends(page_principal)]


def page_require(*, ministry: Ministry | None = None, roles: tuple[str, ...] = ()) -> Any:
    """The pages' twin of ``auth.require``: the same rule, on the page session's principal."""

    async def check(principal: PagePrincipal) -> Principal:
        return admit(principal, ministry=ministry, roles=roles)

    return Depends(check)


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Every form posts back the session's token (a cross-site form cannot read it)."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get("csrf")
    form = await request.form()
    sent = form.get("csrf_token")
    if not isinstance(expected, str) or not isinstance(sent, str):
        raise Forbidden("Formulir ini sudah kedaluwarsa. Muat ulang halaman lalu kirim lagi.")
    if not hmac.compare_digest(expected.encode(), sent.encode()):
        raise Forbidden("Formulir ini sudah kedaluwarsa. Muat ulang halaman lalu kirim lagi.")


def flash(request: Request, message: str, kind: str = "success") -> None:
    """A message for the next page shown (after a redirect)."""
    request.session.setdefault("flash", []).append({"kind": kind, "message": message})


def _take_flashes(request: Request) -> list[dict[str, str]]:
    return list(request.session.pop("flash", []) or [])


# --- rendering -----------------------------------------------------------------------------


class Pages:
    """Templates of one service's pages over the shared layout and components."""

    def __init__(self, templates: Path | None = None, *, nav: Sequence[NavItem] = ()) -> None:
        loaders = [FileSystemLoader(str(templates))] if templates else []
        loaders.append(FileSystemLoader(str(HERE / "templates")))
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # Compiled once and kept: a page's template, its layout and the components it
            # imports were each checked against their file's time on every render.
            auto_reload=False,
        )
        self.env.globals.update(STAFF=STAFF, MINISTRY_NAMES=MINISTRY_NAMES, ROLE_NAMES=ROLE_NAMES)
        self.env.filters["tanggal"] = _tanggal
        self.nav = tuple(nav)

    def render(
        self,
        request: Request,
        template: str,
        *,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        principal = session_principal(request)
        page = self.env.get_template(template).render(
            request=request,
            principal=principal,
            nav=[item for item in self.nav if item.shown_to(principal)],
            current_path=request.url.path,
            csrf_token=csrf_token(request),
            flashes=_take_flashes(request),
            **context,
        )
        return HTMLResponse(page, status_code=status_code, headers={"Cache-Control": "no-store"})


_MONTHS = (
    "Januari Februari Maret April Mei Juni Juli Agustus September Oktober November Desember"
).split()


def _tanggal(value: Any) -> str:
    """A date as people here write it: 5 Desember 2026."""
    if value is None:
        return "—"
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


# The error pages, in the shared templates only; with the service's navigation when it has
# pages (install_pages keeps them on app.state).
_errors = Pages()
_TITLES = {
    403: "Akses ditolak",
    404: "Halaman tidak ditemukan",
    405: "Halaman tidak ditemukan",
    503: "Layanan sementara tidak tersedia",
}


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    pages: Pages = getattr(request.app.state, "staff_pages", None) or _errors
    return pages.render(
        request,
        "galat.html",
        status_code=status,
        title=_TITLES.get(status, "Terjadi kesalahan"),
        detail=detail,
    )


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{STAFF}/masuk?next={quote(target)}", status_code=303)


class PageRoute(APIRoute):
    """A page: problems become the error page, a missing session the sign-in page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return sign_in_redirect(request)
            except Problem as problem:
                return error_page(request, problem.status, problem.detail)
            except RequestValidationError:
                # A malformed id or filter in an address names nothing that exists.
                return error_page(request, 404, NotFound("Halaman tidak ditemukan.").detail)

        return page


class PageRouter(APIRouter):
    """A router of pages; ``pages`` renders its error pages, and any address under /staf the
    service does not have, with the service's navigation."""

    pages: Pages | None = None


def page_router(prefix: str = "", *, pages: Pages | None = None) -> PageRouter:
    """A router of pages: under /staf, out of the OpenAPI document, CSRF on every form."""
    router = PageRouter(
        prefix=STAFF + prefix,
        route_class=PageRoute,
        include_in_schema=False,
        dependencies=[Depends(check_csrf), Depends(refuse_control_characters_in_form)],
    )
    router.pages = pages
    return router
