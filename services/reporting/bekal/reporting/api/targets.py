"""Targets of new entrepreneurs as data (audited edits), and progress against them.

Targets live in the service's own database, apart from the projections: a rebuild never
replaces them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from bekal.reporting import exports
from bekal.reporting.deps import ControlSession, ProjectionSession, ReportReader, TargetEditor
from bekal.reporting.schemas import (
    TargetChangePublic,
    TargetChangesPublic,
    TargetProgressesPublic,
    TargetProgressPublic,
    TargetPublic,
    TargetsPublic,
    TargetUpdate,
)
from bekal.reporting.services import targets as targets_service
from bekal.shared.idempotency import commit
from bekal.shared.problems import Problem

router = APIRouter(prefix="/api/v1/targets", tags=["targets"])


@router.get("", response_model=TargetsPublic, summary="Target wirausaha baru per tahun")
async def list_targets(session: ControlSession, _: ReportReader) -> Any:
    rows = await targets_service.list_targets(session=session)
    return TargetsPublic(data=[TargetPublic.model_validate(r) for r in rows], count=len(rows))


@router.get(
    "/progress", response_model=TargetProgressesPublic, summary="Capaian terhadap target per tahun"
)
async def target_progress(
    session: ProjectionSession, targets: ControlSession, _: ReportReader
) -> Any:
    rows, data_as_of = await targets_service.target_progress(
        session=session, targets_session=targets
    )
    return TargetProgressesPublic(
        data=[
            TargetProgressPublic(
                **r.__dict__,
                progress_annual=r.progress_annual,
                progress_cumulative=r.progress_cumulative,
            )
            for r in rows
        ],
        data_as_of=data_as_of,
    )


PROGRESS_COLUMNS = (
    "year",
    "target_annual",
    "target_cumulative",
    "new_entrepreneurs",
    "new_entrepreneurs_cumulative",
    "certified",
    "certified_cumulative",
    "progress_annual",
    "progress_cumulative",
)


async def _progress_table(session: Any, targets: Any) -> tuple[exports.Table, Any]:
    rows, data_as_of = await targets_service.target_progress(
        session=session, targets_session=targets
    )
    values = [
        {
            **r.__dict__,
            "progress_annual": r.progress_annual,
            "progress_cumulative": r.progress_cumulative,
        }
        for r in rows
    ]
    table = exports.Table(
        columns=list(PROGRESS_COLUMNS), rows=[[v[c] for c in PROGRESS_COLUMNS] for v in values]
    )
    return table, data_as_of


@router.get(
    "/progress.csv",
    summary="Capaian terhadap target sebagai CSV (baris judul)",
    **exports.file_route(exports.CSV_MEDIA_TYPE),
)
async def target_progress_csv(
    session: ProjectionSession, targets: ControlSession, _: ReportReader
) -> Response:
    table, data_as_of = await _progress_table(session, targets)
    return Response(
        exports.to_csv(table),
        media_type=exports.CSV_MEDIA_TYPE,
        headers=exports.download_headers("capaian-target.csv", data_as_of),
    )


@router.get(
    "/progress.xlsx",
    summary="Capaian terhadap target sebagai XLSX (baris judul)",
    **exports.file_route(exports.XLSX_MEDIA_TYPE),
)
async def target_progress_xlsx(
    session: ProjectionSession, targets: ControlSession, _: ReportReader
) -> Response:
    table, data_as_of = await _progress_table(session, targets)
    return Response(
        exports.to_xlsx(table, sheet="Capaian target", data_as_of=data_as_of),
        media_type=exports.XLSX_MEDIA_TYPE,
        headers=exports.download_headers("capaian-target.xlsx", data_as_of),
    )


@router.get(
    "/changes",
    response_model=TargetChangesPublic,
    summary="Riwayat perubahan target (siapa, kapan, nilai lama dan baru)",
)
async def target_changes(
    session: ControlSession,
    _: ReportReader,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> Any:
    rows = await targets_service.target_changes(session=session, year=year)
    return TargetChangesPublic(
        data=[TargetChangePublic.model_validate(r) for r in rows], count=len(rows)
    )


@router.put("/{year}", response_model=TargetPublic, summary="Tetapkan atau ubah target satu tahun")
async def put_target(
    session: ControlSession,
    principal: TargetEditor,
    year: Annotated[int, Path(ge=2000, le=2100)],
    body: TargetUpdate,
) -> Any:
    if body.annual is None and body.cumulative is None:
        raise Problem(
            "Isi target tahunan atau kumulatif",
            status=422,
            slug="validation-error",
            title="Data tidak valid",
            errors=[{"field": "annual", "message": "Isi annual atau cumulative (atau keduanya)"}],
        )
    row = await targets_service.set_target(
        session=session,
        year=year,
        annual=body.annual,
        cumulative=body.cumulative,
        note=body.note,
        by=principal.subject,
    )
    await commit(session)
    return TargetPublic.model_validate(row)
