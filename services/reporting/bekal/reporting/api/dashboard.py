"""GET /dashboard: the leadership's page (Bahasa Indonesia) opened with a bearer token; its body
(GET /dashboard/isi) is the staff pages' dashboard body (/staf/dasbor, web/), rendered on the
server for the token's holder."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bekal.reporting.deps import ControlSession, ProjectionSession, ReportReader
from bekal.reporting.settings import reporting_settings

router = APIRouter(tags=["dashboard"])
WEB = Path(__file__).resolve().parents[1] / "web"
_ASSETS = {"dasbor.js": "text/javascript", "dasbor.css": "text/css"}


@cache
def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(WEB / "templates")),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
    )


@router.get("/dashboard", response_class=HTMLResponse, summary="Dasbor pimpinan")
async def dashboard(request: Request) -> HTMLResponse:
    # The page holds no data: its script reads the API with the bearer token the user gives
    # (kept in the tab's sessionStorage, taken from the address's #token=... once). Its title
    # and the institutions it names are settings: ministries get reorganised. Staff who sign
    # in use the same dashboard at /staf/dasbor.
    settings = reporting_settings(request.app.state.settings)
    page = (
        _templates()
        .get_template("dasbor-token.html")
        .render(
            dashboard_title=settings.dashboard_title,
            dashboard_issuers=settings.dashboard_issuers,
        )
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get("/dashboard/isi", response_class=HTMLResponse, include_in_schema=False)
async def dashboard_body(
    request: Request, session: ProjectionSession, control: ControlSession, principal: ReportReader
) -> HTMLResponse:
    # Imported here: the web package reads the API's endpoint functions, this package's.
    from bekal.reporting.web.dashboard import dashboard_view, pages
    from bekal.reporting.web.figures import read_filters

    view = await dashboard_view(
        session=session,
        control=control,
        principal=principal,
        filters=read_filters(request.query_params),
        export_base="/api/v1/indicators",
    )
    body = pages.env.get_template("dasbor-isi.html").render(
        action="/dashboard", facilities_href=None, **view
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


@cache
def _asset(name: str) -> bytes:
    return (WEB / "static" / name).read_bytes()


@router.get("/dashboard/dasbor.js", include_in_schema=False)
async def dashboard_script() -> Response:
    return Response(_asset("dasbor.js"), media_type=_ASSETS["dasbor.js"])


@router.get("/dashboard/dasbor.css", include_in_schema=False)
async def dashboard_stylesheet() -> Response:
    return Response(_asset("dasbor.css"), media_type=_ASSETS["dasbor.css"])
