"""GET /dashboard: the leadership's page (Bahasa Indonesia), data fetched with the user's token."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["dashboard"])


@lru_cache
def _page() -> str:
    return (resources.files("bekal.reporting") / "web" / "dashboard.html").read_text("utf-8")


@router.get("/dashboard", response_class=HTMLResponse, summary="Dasbor pimpinan")
async def dashboard() -> HTMLResponse:
    # The page holds no data: its script reads the API with the bearer token the user gives
    # (kept in the tab's sessionStorage, taken from the address's #token=... once).
    return HTMLResponse(_page(), headers={"Cache-Control": "no-store"})
