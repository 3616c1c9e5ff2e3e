"""Operators' endpoints: rebuild the projections into a new generation, follow it, drop old ones."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from bekal.reporting.deps import Operator
from bekal.reporting.generations import CannotDrop, Projections, RebuildRunning
from bekal.reporting.schemas import GenerationPublic, GenerationsPublic
from bekal.shared.problems import Conflict, NotFound

router = APIRouter(prefix="/api/v1/admin/projections", tags=["admin"])


def _projections(request: Request) -> Projections:
    projections: Projections = request.app.state.projections
    return projections


async def _status(projections: Projections) -> GenerationsPublic:
    live, building, rows = await projections.generations()
    return GenerationsPublic(
        live=live,
        building=building,
        data=[GenerationPublic.model_validate(r) for r in rows],
    )


@router.get("", response_model=GenerationsPublic, summary="Generasi proyeksi dan kemajuan rebuild")
async def generations(request: Request, _: Operator) -> Any:
    return await _status(_projections(request))


@router.post(
    "/rebuild",
    response_model=GenerationsPublic,
    status_code=202,
    summary="Bangun ulang proyeksi ke generasi baru; beralih otomatis setelah tersusul",
)
async def start_rebuild(request: Request, _: Operator) -> Any:
    projections = _projections(request)
    try:
        await projections.start_rebuild()
    except RebuildRunning as exc:
        raise Conflict(f"Pembangunan ulang sedang berjalan: {exc}", slug="rebuild-running") from exc
    return await _status(projections)


@router.delete(
    "/{number}",
    response_model=GenerationPublic,
    summary="Hapus generasi lama (bukan yang aktif atau sedang dibangun)",
)
async def drop_generation(
    request: Request, _: Operator, number: Annotated[int, Path(ge=0, le=2**31 - 1)]
) -> Any:
    try:
        row = await _projections(request).drop(number)
    except CannotDrop as exc:
        raise Conflict(
            f"Generasi ini tidak dapat dihapus: {exc}", slug="generation-in-use"
        ) from exc
    if row is None:
        raise NotFound(f"Generasi {number} tidak ada")
    return GenerationPublic.model_validate(row)
