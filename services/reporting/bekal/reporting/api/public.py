"""Public outputs, no sign-in: a summary and the open-data export, every count rounded to base 5
(``privacy``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bekal.reporting import exports, privacy
from bekal.reporting.deps import ProjectionSession
from bekal.reporting.privacy import OPEN_DATA_KEYS, PUBLIC_COUNTERS
from bekal.reporting.services.publication import public_tables
from bekal.reporting.settings import reporting_settings

router = APIRouter(prefix="/public", tags=["public"])

# Version of the open-data shape: columns are only ever added at the end, with a new version.
# Version 2: every count rounded to base 5 (version 1 showed small counts as "<5" or "x").
OPEN_DATA_SCHEMA = "bekal.open-data/2"


def _order(value: Any) -> tuple[bool, Any]:
    return (value is None, value if value is not None else 0)


def _rounding() -> dict[str, Any]:
    return {
        "method": "random_rounding",
        "base": privacy.ROUNDING_BASE,
        "note": "Setiap angka dibulatkan ke kelipatan 5 terdekat di atas atau di bawahnya "
        "(angka 0 dan kelipatan 5 tetap), agar tidak ada orang yang dapat dikenali dari angka "
        "kecil. Total dibulatkan tersendiri, sehingga jumlah baris dapat berbeda sedikit dari "
        "totalnya.",
    }


async def _tables(request: Request, session: Any) -> tuple[privacy.PublicTables, datetime | None]:
    settings = reporting_settings(request.app.state.settings)
    return await public_tables(session=session, secret=settings.publication_secret)


def _as_of(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@router.get("/summary", summary="Ringkasan publik (angka dibulatkan ke kelipatan 5)")
async def public_summary(request: Request, session: ProjectionSession) -> dict[str, Any]:
    tables, data_as_of = await _tables(request, session)
    return {
        "data_as_of": _as_of(data_as_of),
        "rounding": _rounding(),
        "totals": tables.totals,
        "by_year": sorted(tables.margins["year"], key=lambda r: _order(r["year"])),
        "by_province": sorted(tables.margins["province"], key=lambda r: _order(r["province"])),
    }


def _open_data_rows(tables: privacy.PublicTables) -> list[dict[str, Any]]:
    return sorted(tables.cells, key=lambda r: tuple(_order(r[k]) for k in OPEN_DATA_KEYS))


@router.get("/open-data.json", summary="Data terbuka (JSON), bentuk tetap dan terdokumentasi")
async def open_data_json(request: Request, session: ProjectionSession) -> dict[str, Any]:
    tables, data_as_of = await _tables(request, session)
    return {
        "schema": OPEN_DATA_SCHEMA,
        "data_as_of": _as_of(data_as_of),
        "rounding": _rounding(),
        "columns": [*OPEN_DATA_KEYS, *PUBLIC_COUNTERS],
        "rows": _open_data_rows(tables),
    }


@router.get(
    "/open-data.csv",
    summary="Data terbuka (CSV), bentuk tetap dan terdokumentasi",
    **exports.file_route(exports.CSV_MEDIA_TYPE),
)
async def open_data_csv(request: Request, session: ProjectionSession) -> Response:
    tables, data_as_of = await _tables(request, session)
    columns = [*OPEN_DATA_KEYS, *PUBLIC_COUNTERS]
    table = exports.Table(
        columns=columns, rows=[[r[c] for c in columns] for r in _open_data_rows(tables)]
    )
    return Response(
        exports.to_csv(table),
        media_type=exports.CSV_MEDIA_TYPE,
        headers=exports.download_headers("bekal-data-terbuka.csv", data_as_of),
    )
