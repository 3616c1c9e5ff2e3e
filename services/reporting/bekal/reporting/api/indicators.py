"""GET /api/v1/indicators: counts and rates by facility, province, program and year."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from bekal.reporting import services
from bekal.reporting.deps import ReportReader, SessionDep
from bekal.reporting.domain import Counters, InvalidGroupBy, parse_group_by
from bekal.reporting.schemas import IndicatorCounters, IndicatorRow, IndicatorsPublic
from bekal.shared.problems import Problem

router = APIRouter(prefix="/api/v1/indicators", tags=["indicators"])


def _counters(c: Counters) -> dict[str, Any]:
    return {
        "enrolled": c.enrolled,
        "withdrawn": c.withdrawn,
        "withdrawn_by_reason": dict(c.withdrawn_by_reason),
        "completed": c.completed,
        "not_completed": c.not_completed,
        "certified": c.certified,
        "completion_rate": c.completion_rate,
    }


@router.get(
    "",
    response_model=IndicatorsPublic,
    # Rows carry only the keys of the requested dimensions; every counter is always set.
    response_model_exclude_unset=True,
    summary="Indikator pelatihan: peserta, penarikan, kelulusan, sertifikat",
)
async def get_indicators(
    session: SessionDep,
    _: ReportReader,
    group_by: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Comma-separated subset of facility, province, program, year; "
            "empty for totals only",
        ),
    ] = None,
    year: Annotated[int | None, Query(ge=1900, le=2100)] = None,
    province: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    facility_id: uuid.UUID | None = None,
    program_id: uuid.UUID | None = None,
) -> Any:
    try:
        dimensions = parse_group_by(group_by)
    except InvalidGroupBy as exc:
        raise Problem(
            "Data tidak valid pada: group_by",
            status=422,
            slug="validation-error",
            title="Data tidak valid",
            errors=[{"field": "group_by", "message": str(exc), "code": "invalid_choice"}],
        ) from exc
    report = await services.indicators(
        session,
        group_by=dimensions,
        filters=services.IndicatorFilters(
            year=year, province=province, facility_id=facility_id, program_id=program_id
        ),
    )
    return IndicatorsPublic(
        group_by=[d.value for d in report.group_by],
        data=[
            IndicatorRow.model_validate({**g.keys, **_counters(g.counters)})
            for g in report.groups
        ],
        totals=IndicatorCounters.model_validate(_counters(report.totals)),
        data_as_of=report.data_as_of,
    )
