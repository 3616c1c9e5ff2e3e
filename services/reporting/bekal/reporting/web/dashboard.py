"""The dashboard as a staff page (/staf/dasbor): the shared layout and sign-in, with a link to
each ministry's pages the signed-in person may use. Its script reads the figures from routes
beside it that call the API's own endpoint functions under the API's rule (READER_ROLES, and
check_detail for facility or session detail), answering the page session instead of a bearer
token."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from bekal.reporting.api import indicators, targets
from bekal.reporting.deps import READER_ROLES, ControlSession, ProjectionSession
from bekal.reporting.schemas import IndicatorsPublic, TargetProgressesPublic
from bekal.reporting.settings import reporting_settings
from bekal.shared.auth import Ministry, Principal, Role
from bekal.shared.web import STAFF, NavItem, Pages, page_require, page_router

DASHBOARD = f"{STAFF}/dasbor"
router = page_router()
Viewer = Annotated[Principal, page_require(roles=READER_ROLES)]
pages = Pages(
    Path(__file__).parent / "templates",
    nav=[NavItem("Dasbor", DASHBOARD, roles=READER_ROLES)],
)

# Each ministry's staff pages, served by the service that owns them (settings say where), and
# who may use them: the rules of those services' APIs.
MINISTRY_PAGES = (
    (
        "registry_pages_url",
        "Warga binaan (Pemasyarakatan)",
        Ministry.CORRECTIONS,
        (Role.REGISTRY_ADMIN, Role.FACILITY_OFFICER),
    ),
    (
        "training_pages_url",
        "Pelatihan (Perindustrian)",
        Ministry.INDUSTRY,
        (Role.TRAINING_ADMIN, Role.TRAINING_OFFICER, Role.FIELD_OFFICER),
    ),
    (
        "certification_pages_url",
        "Sertifikat (Perindustrian)",
        Ministry.INDUSTRY,
        (Role.CERTIFICATION_ADMIN, Role.TRAINING_ADMIN, Role.TRAINING_OFFICER),
    ),
)


def ministry_pages(request: Request, principal: Principal) -> list[NavItem]:
    settings = reporting_settings(request.app.state.settings)
    items = []
    for setting, label, ministry, roles in MINISTRY_PAGES:
        url = getattr(settings, setting)
        item = NavItem(label, url or "", ministry=ministry, roles=roles)
        if url and item.shown_to(principal):
            items.append(item)
    return items


@router.get("")
async def home() -> Response:
    return RedirectResponse(DASHBOARD, status_code=303)


@router.get("/dasbor")
async def dashboard(request: Request, principal: Viewer) -> Response:
    settings = reporting_settings(request.app.state.settings)
    return pages.render(
        request,
        "dasbor.html",
        title="Dasbor",
        dashboard_title=settings.dashboard_title,
        dashboard_issuers=settings.dashboard_issuers,
        ministry_pages=ministry_pages(request, principal),
    )


# --- what the page's script reads: the API's endpoints, on the page session ----------------


@router.get(
    "/dasbor/data/indicators",
    response_model=IndicatorsPublic,
    response_model_exclude_unset=True,
)
async def indicators_data(
    session: ProjectionSession, principal: Viewer, query: indicators.QueryDep
) -> Any:
    return await indicators.get_indicators(session=session, principal=principal, query=query)


@router.get("/dasbor/data/indicators.csv")
async def indicators_csv(
    session: ProjectionSession, principal: Viewer, query: indicators.QueryDep
) -> Any:
    return await indicators.get_indicators_csv(session=session, principal=principal, query=query)


@router.get("/dasbor/data/indicators.xlsx")
async def indicators_xlsx(
    session: ProjectionSession, principal: Viewer, query: indicators.QueryDep
) -> Any:
    return await indicators.get_indicators_xlsx(session=session, principal=principal, query=query)


@router.get("/dasbor/data/targets/progress", response_model=TargetProgressesPublic)
async def target_progress(
    session: ProjectionSession, control: ControlSession, principal: Viewer
) -> Any:
    return await targets.target_progress(session=session, targets=control, _=principal)
