"""Public outputs, no sign-in: a summary and the open-data export, small counts suppressed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from bekal.reporting import exports, privacy
from bekal.reporting.deps import ProjectionSession
from bekal.reporting.privacy import OPEN_DATA_KEYS, PUBLIC_COUNTERS
from bekal.reporting.services.publication import public_tables

router = APIRouter(prefix="/public", tags=["public"])

# Version of the open-data shape: columns are only ever added at the end, with a new version.
OPEN_DATA_SCHEMA = "bekal.open-data/1"


def _order(value: Any) -> tuple[bool, Any]:
    return (value is None, value if value is not None else 0)


def _suppression() -> dict[str, Any]:
    return {
        "threshold": privacy.SMALL_COUNT_THRESHOLD,
        "primary": privacy.PRIMARY,
        "secondary": privacy.SECONDARY,
        "note": 'Angka 1 sampai 4 ditampilkan sebagai "<5"; sel yang disembunyikan agar '
        'sel kecil tidak dapat dihitung ulang dari total ditandai "x".',
    }


def _as_of(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@router.get("/summary", summary="Ringkasan publik (angka kecil disamarkan)")
async def public_summary(session: ProjectionSession) -> dict[str, Any]:
    tables, data_as_of = await public_tables(session=session)
    return {
        "data_as_of": _as_of(data_as_of),
        "suppression": _suppression(),
        "totals": tables.totals,
        "by_year": sorted(tables.margins["year"], key=lambda r: _order(r["year"])),
        "by_province": sorted(tables.margins["province"], key=lambda r: _order(r["province"])),
    }


def _open_data_rows(tables: privacy.PublicTables) -> list[dict[str, Any]]:
    return sorted(tables.cells, key=lambda r: tuple(_order(r[k]) for k in OPEN_DATA_KEYS))


@router.get("/open-data.json", summary="Data terbuka (JSON), bentuk tetap dan terdokumentasi")
async def open_data_json(session: ProjectionSession) -> dict[str, Any]:
    tables, data_as_of = await public_tables(session=session)
    return {
        "schema": OPEN_DATA_SCHEMA,
        "data_as_of": _as_of(data_as_of),
        "suppression": _suppression(),
        "columns": [*OPEN_DATA_KEYS, *PUBLIC_COUNTERS],
        "rows": _open_data_rows(tables),
    }


@router.get(
    "/open-data.csv",
    summary="Data terbuka (CSV), bentuk tetap dan terdokumentasi",
    **exports.file_route(exports.CSV_MEDIA_TYPE),
)
async def open_data_csv(session: ProjectionSession) -> Response:
    tables, data_as_of = await public_tables(session=session)
    columns = [*OPEN_DATA_KEYS, *PUBLIC_COUNTERS]
    table = exports.Table(
        columns=columns, rows=[[r[c] for c in columns] for r in _open_data_rows(tables)]
    )
    return Response(
        exports.to_csv(table),
        media_type=exports.CSV_MEDIA_TYPE,
        headers=exports.download_headers("bekal-data-terbuka.csv", data_as_of),
    )
