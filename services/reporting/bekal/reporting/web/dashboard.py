"""The dashboard as staff pages (/staf/dasbor), rendered on the server (they work without
JavaScript): the figures, with a link to each ministry's pages the signed-in person may use, and
for the roles that may read detail, the figures per facility and per session.

Every figure comes from the API's own endpoint functions under the API's rules (READER_ROLES;
check_detail for a facility or a session), on the page session instead of a bearer token.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.reporting import labels
from bekal.reporting.api import indicators, targets
from bekal.reporting.deps import DETAIL_ROLES, READER_ROLES, ControlSession, ProjectionSession
from bekal.reporting.schemas import IndicatorRow
from bekal.reporting.settings import reporting_settings
from bekal.reporting.web import figures
from bekal.reporting.web.figures import Filters, read, read_filters
from bekal.shared.auth import Ministry, Principal, Role
from bekal.shared.problems import NotFound
from bekal.shared.web import STAFF, NavItem, Pages, page_require, page_router

DASHBOARD = f"{STAFF}/dasbor"
FACILITIES = f"{DASHBOARD}/lapas"
EXPORTS = f"{DASHBOARD}/data"
router = page_router()
Viewer = Annotated[Principal, page_require(roles=READER_ROLES)]
DetailViewer = Annotated[Principal, page_require(roles=DETAIL_ROLES)]
pages = Pages(
    Path(__file__).parent / "templates",
    nav=[
        NavItem("Dasbor", DASHBOARD, roles=READER_ROLES, not_under=(FACILITIES,)),
        NavItem("Per lapas/rutan dan sesi", FACILITIES, roles=DETAIL_ROLES),
    ],
)
pages.env.filters.update(angka=figures.angka, persen=figures.persen, waktu=figures.waktu)
pages.env.globals.update(withdrawals=figures.withdrawals, schedule=figures.schedule)

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


async def dashboard_view(
    *,
    session: AsyncSession,
    control: AsyncSession,
    principal: Principal,
    filters: Filters,
    export_base: str,
) -> dict[str, Any]:
    """What the dashboard's body (dasbor-isi.html) shows: the staff page and /dashboard's."""
    unfiltered = Filters()
    by_year = await read(session, principal, unfiltered.query("year"))
    every_province = await read(session, principal, unfiltered.query("province"))
    every_program = await read(session, principal, unfiltered.query("program"))
    every_sector = await read(session, principal, unfiltered.query("sector"))
    by_province = await read(session, principal, filters.query("province"))
    by_program = await read(session, principal, filters.query("program,year"))
    by_sector = await read(session, principal, filters.query("sector"))
    by_sex = await read(session, principal, filters.query("sex"))
    progress = await targets.target_progress(session=session, targets=control, _=principal)
    await session.rollback()
    years = {r.year: r for r in by_year.data if r.year is not None}
    largest = max([r.enrolled for r in by_province.data], default=0)
    return {
        "filters": filters,
        "filter_labels": figures.FILTER_LABELS,
        "options": {
            "year": [(str(y), str(y)) for y in sorted(years, reverse=True)],
            "province": figures.choices(every_province, "province"),
            "program_id": figures.choices(every_program, "program_id"),
            "sector": figures.choices(every_sector, "sector"),
            "sex": [(s.value, labels.sex_label(s.value)) for s in labels.Sex],
        },
        "totals": by_province.totals,
        "data_as_of": by_province.data_as_of,
        "targets": figures.target_bars(progress.data, years),
        "provinces": [
            (r.province or labels.UNKNOWN, r.province or "", r, figures.bar(r.enrolled, largest))
            for r in by_province.data
        ],
        "programs": by_program.data,
        "sectors": [
            (labels.sector_label(r.sector), r.sector or "", r, None) for r in by_sector.data
        ],
        "sexes": [(labels.sex_label(r.sex), r.sex or "", r, None) for r in by_sex.data],
        "exports": {
            kind: filters.link(f"{export_base}.{kind}", group_by=figures.EXPORT_GROUP_BY)
            for kind in ("csv", "xlsx")
        },
    }


@router.get("")
async def home() -> Response:
    return RedirectResponse(DASHBOARD, status_code=303)


@router.get("/dasbor")
async def dashboard(
    request: Request,
    session: ProjectionSession,
    control: ControlSession,
    principal: Viewer,
) -> Response:
    settings = reporting_settings(request.app.state.settings)
    filters = read_filters(request.query_params)
    view = await dashboard_view(
        session=session,
        control=control,
        principal=principal,
        filters=filters,
        export_base=f"{EXPORTS}/indicators",
    )
    return pages.render(
        request,
        "dasbor.html",
        title="Dasbor",
        dashboard_title=settings.dashboard_title,
        dashboard_issuers=settings.dashboard_issuers,
        ministry_pages=ministry_pages(request, principal),
        facilities_href=filters.link(FACILITIES) if principal.has_role(*DETAIL_ROLES) else None,
        action=DASHBOARD,
        **view,
    )


# --- per facility and per session: detail, for DETAIL_ROLES ----------------------------------


@router.get("/dasbor/lapas")
async def facilities(
    request: Request, session: ProjectionSession, principal: DetailViewer
) -> Response:
    filters = read_filters(request.query_params)
    report = await read(session, principal, filters.query("facility,province"))
    every_year = await read(session, principal, Filters().query("year"))
    rows = [
        (
            figures.facility_label(r),
            r.facility_code or "",
            r,
            f"{FACILITIES}/{r.facility_id}" if r.facility_id else None,
        )
        for r in report.data
    ]
    return pages.render(
        request,
        "dasbor-lapas-daftar.html",
        title="Angka per lapas/rutan",
        filters=filters,
        filter_labels=figures.FILTER_LABELS,
        years=[(str(r.year), str(r.year)) for r in reversed(every_year.data) if r.year is not None],
        rows=rows,
        totals=report.totals,
        data_as_of=report.data_as_of,
        dashboard_href=filters.link(DASHBOARD),
        action=FACILITIES,
    )


async def _facility(
    session: AsyncSession, principal: Principal, facility_id: uuid.UUID
) -> tuple[IndicatorRow, list[IndicatorRow], Any]:
    """The facility's row and its sessions' rows (every year), or 404 when it has no figures."""
    everything = Filters()
    facility = await read(
        session, principal, everything.query("facility,province", facility_id=facility_id)
    )
    if not facility.data:
        raise NotFound("Lapas/rutan ini belum punya angka pelatihan.")
    sessions = await read(
        session, principal, everything.query("session,program", facility_id=facility_id)
    )
    return facility.data[0], sessions.data, facility


@router.get("/dasbor/lapas/{facility_id}")
async def facility_page(
    request: Request,
    session: ProjectionSession,
    principal: DetailViewer,
    facility_id: uuid.UUID,
) -> Response:
    facility, sessions, report = await _facility(session, principal, facility_id)
    return pages.render(
        request,
        "dasbor-lapas.html",
        title=figures.facility_label(facility),
        facility=facility,
        facility_name=figures.facility_label(facility),
        sessions=[
            (
                figures.session_label(s),
                str(s.session_id or ""),
                s,
                f"{FACILITIES}/{facility_id}/sesi/{s.session_id}" if s.session_id else None,
            )
            for s in sessions
        ],
        data_as_of=report.data_as_of,
        back=FACILITIES,
    )


@router.get("/dasbor/lapas/{facility_id}/sesi/{session_id}")
async def session_page(
    request: Request,
    session: ProjectionSession,
    principal: DetailViewer,
    facility_id: uuid.UUID,
    session_id: uuid.UUID,
) -> Response:
    facility, sessions, report = await _facility(session, principal, facility_id)
    found = [s for s in sessions if s.session_id == session_id]
    if not found:
        raise NotFound("Sesi ini tidak ada di lapas/rutan tersebut.")
    by_sex = await read(session, principal, Filters().query("session,sex", facility_id=facility_id))
    one = found[0]
    return pages.render(
        request,
        "dasbor-sesi.html",
        title=figures.session_label(one),
        row=one,
        session_name=figures.session_label(one),
        facility_name=figures.facility_label(facility),
        facility_href=f"{FACILITIES}/{facility_id}",
        sexes=[
            (labels.sex_label(r.sex), r.sex or "", r, None)
            for r in by_sex.data
            if r.session_id == session_id
        ],
        data_as_of=report.data_as_of,
    )


# --- the downloads: the API's files, on the page session -------------------------------------


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
