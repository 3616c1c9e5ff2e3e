"""GET /dashboard: the leadership's page (Bahasa Indonesia), data fetched with the user's token."""

from __future__ import annotations

from functools import lru_cache
from html import escape
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from bekal.reporting.settings import reporting_settings

router = APIRouter(tags=["dashboard"])


@lru_cache
def _page() -> str:
    return (resources.files("bekal.reporting") / "web" / "dashboard.html").read_text("utf-8")


@router.get("/dashboard", response_class=HTMLResponse, summary="Dasbor pimpinan")
async def dashboard(request: Request) -> HTMLResponse:
    # The page holds no data: its script reads the API with the bearer token the user gives
    # (kept in the tab's sessionStorage, taken from the address's #token=... once). Its title
    # and the institutions it names are settings: ministries get reorganised.
    settings = reporting_settings(request.app.state.settings)
    page = _page()
    for name in ("dashboard_title", "dashboard_issuers"):
        page = page.replace("{{" + name + "}}", escape(getattr(settings, name)))
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})
