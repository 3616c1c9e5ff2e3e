"""GET /api/v1/indicators: counts and rates by facility, province, program, year, sector, sex.

Also the same table as CSV and XLSX for authorised readers (no suppression: these stay inside
the ministries).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from bekal.reporting import exports
from bekal.reporting.deps import DETAIL_ROLES, ProjectionSession, ReportReader
from bekal.reporting.domain import (
    DETAIL_DIMENSIONS,
    Counters,
    Dimension,
    InvalidGroupBy,
    parse_group_by,
)
from bekal.reporting.schemas import IndicatorCounters, IndicatorRow, IndicatorsPublic
from bekal.reporting.services.indicators import IndicatorFilters, indicators
from bekal.shared.auth import Principal
from bekal.shared.events.catalogue import Sex
from bekal.shared.problems import Forbidden, Problem

router = APIRouter(prefix="/api/v1/indicators", tags=["indicators"])


def counters_json(c: Counters) -> dict[str, Any]:
    return {
        "enrolled": c.enrolled,
        "withdrawn": c.withdrawn,
        "withdrawn_by_reason": dict(c.withdrawn_by_reason),
        "completed": c.completed,
        "not_completed": c.not_completed,
        "certified": c.certified,
        "completion_rate": c.completion_rate,
        "certification_rate": c.certification_rate,
        "mean_days_to_certificate": c.mean_days_to_certificate,
        "days_to_certificate_count": c.days_to_certificate_count,
        "graduates_released": c.graduates_released,
        "graduates_released_ready": c.graduates_released_ready,
        "waitlisted": c.waitlisted,
        "waiting": c.waiting,
        "business_with_nib": c.business_with_nib,
        "business_without_nib": c.business_without_nib,
        "new_entrepreneurs": c.new_entrepreneurs,
        "employed": c.employed,
    }


@dataclass(frozen=True)
class IndicatorQuery:
    dimensions: list[Dimension]
    filters: IndicatorFilters


def _invalid(field: str, message: str) -> Problem:
    return Problem(
        f"Data tidak valid pada: {field}",
        status=422,
        slug="validation-error",
        title="Data tidak valid",
        errors=[{"field": field, "message": message, "code": "invalid_choice"}],
    )


async def indicator_query(
    group_by: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Comma-separated subset of facility, province, program, year, sector, "
            "sex, session; empty for totals only",
        ),
    ] = None,
    year: Annotated[int | None, Query(ge=1900, le=2100)] = None,
    province: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    facility_id: uuid.UUID | None = None,
    program_id: uuid.UUID | None = None,
    sector: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    sex: Sex | None = None,
) -> IndicatorQuery:
    """The query's parameters, read in the event loop (FastAPI runs a plain function in a
    worker thread, a hand-off that cost more than reading them)."""
    return build_query(
        group_by=group_by,
        year=year,
        province=province,
        facility_id=facility_id,
        program_id=program_id,
        sector=sector,
        sex=sex,
    )


def build_query(
    *,
    group_by: str | None,
    year: int | None,
    province: str | None,
    facility_id: uuid.UUID | None,
    program_id: uuid.UUID | None,
    sector: str | None,
    sex: Sex | None,
) -> IndicatorQuery:
    """What the indicators' parameters ask for; a bad ``group_by`` is refused (422)."""
    try:
        dimensions = parse_group_by(group_by)
    except InvalidGroupBy as exc:
        raise _invalid("group_by", str(exc)) from exc
    return IndicatorQuery(
        dimensions=dimensions,
        filters=IndicatorFilters(
            year=year,
            province=province,
            facility_id=facility_id,
            program_id=program_id,
            sector=sector,
            sex=sex.value if sex else None,
        ),
    )


QueryDep = Annotated[IndicatorQuery, Depends(indicator_query)]


def check_detail(principal: Principal, query: IndicatorQuery) -> None:
    """One facility's or session's numbers are detail: only administrators may read them."""
    wants_detail = bool(DETAIL_DIMENSIONS & set(query.dimensions)) or (
        query.filters.facility_id is not None
    )
    if wants_detail and not principal.has_role(*DETAIL_ROLES):
        raise Forbidden(
            "Rincian per fasilitas atau per sesi hanya untuk peran: " + ", ".join(DETAIL_ROLES),
        )


async def _report(session: Any, principal: Principal, query: IndicatorQuery) -> Any:
    check_detail(principal, query)
    return await indicators(session=session, group_by=query.dimensions, filters=query.filters)


@router.get(
    "",
    response_model=IndicatorsPublic,
    # Rows carry only the keys of the requested dimensions; every counter is always set.
    response_model_exclude_unset=True,
    summary="Indikator pelatihan: peserta, penarikan, kelulusan, sertifikat",
)
async def get_indicators(
    session: ProjectionSession, principal: ReportReader, query: QueryDep
) -> Any:
    report = await _report(session, principal, query)
    return IndicatorsPublic(
        group_by=[d.value for d in report.group_by],
        filters=query.filters.describe(),
        data=[
            IndicatorRow.model_validate({**g.keys, **counters_json(g.counters)})
            for g in report.groups
        ],
        totals=IndicatorCounters.model_validate(counters_json(report.totals)),
        data_as_of=report.data_as_of,
    )


@router.get(
    ".csv",
    summary="Tabel indikator sebagai CSV (baris judul, filter di nama berkas)",
    **exports.file_route(exports.CSV_MEDIA_TYPE),
)
async def get_indicators_csv(
    session: ProjectionSession, principal: ReportReader, query: QueryDep
) -> Any:
    report = await _report(session, principal, query)
    table = exports.indicator_table(report)
    name = exports.file_name("indikator", query.dimensions, query.filters, "csv")
    return Response(
        exports.to_csv(table),
        media_type=exports.CSV_MEDIA_TYPE,
        headers=exports.download_headers(name, report.data_as_of),
    )


@router.get(
    ".xlsx",
    summary="Tabel indikator sebagai XLSX (baris judul, filter di nama berkas)",
    **exports.file_route(exports.XLSX_MEDIA_TYPE),
)
async def get_indicators_xlsx(
    session: ProjectionSession, principal: ReportReader, query: QueryDep
) -> Any:
    report = await _report(session, principal, query)
    table = exports.indicator_table(report)
    name = exports.file_name("indikator", query.dimensions, query.filters, "xlsx")
    return Response(
        exports.to_xlsx(table, sheet="Indikator", data_as_of=report.data_as_of),
        media_type=exports.XLSX_MEDIA_TYPE,
        headers=exports.download_headers(name, report.data_as_of),
    )
