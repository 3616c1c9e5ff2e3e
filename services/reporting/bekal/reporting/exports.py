"""Indicator tables as CSV and XLSX files: a header row, the filters in the file name."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import xlsxwriter
from fastapi import Response

from bekal.reporting.domain import DIMENSION_KEYS, Counters, Dimension
from bekal.shared import spreadsheets
from bekal.shared.events.catalogue import WithdrawalReason

if TYPE_CHECKING:
    from bekal.reporting.services.indicators import IndicatorFilters, IndicatorReport

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def file_route(media_type: str) -> dict[str, Any]:
    """Route options that document a file answer in the OpenAPI (not the JSON default)."""
    return {
        "response_class": Response,
        "responses": {200: {"content": {media_type.split(";")[0]: {}}, "description": "Berkas"}},
    }


# The counter columns of an exported table, in order; the names are the API's field names.
COUNTER_HEADERS: tuple[str, ...] = (
    "enrolled",
    "withdrawn",
    *[f"withdrawn_{r.value}" for r in WithdrawalReason],
    "completed",
    "not_completed",
    "certified",
    "completion_rate",
    "certification_rate",
    "mean_days_to_certificate",
    "graduates_released",
    "graduates_released_ready",
    "waitlisted",
    "waiting",
    "business_with_nib",
    "business_without_nib",
    "new_entrepreneurs",
    "employed",
)


@dataclass(frozen=True)
class Table:
    """What any export writes: column names and rows of plain values."""

    columns: list[str]
    rows: list[list[Any]]


def counter_values(c: Counters) -> list[Any]:
    return [
        c.enrolled,
        c.withdrawn,
        *[c.withdrawn_by_reason.get(r.value, 0) for r in WithdrawalReason],
        c.completed,
        c.not_completed,
        c.certified,
        c.completion_rate,
        c.certification_rate,
        c.mean_days_to_certificate,
        c.graduates_released,
        c.graduates_released_ready,
        c.waitlisted,
        c.waiting,
        c.business_with_nib,
        c.business_without_nib,
        c.new_entrepreneurs,
        c.employed,
    ]


def indicator_table(report: IndicatorReport) -> Table:
    """One row per group then a "total" row; the dimension columns come first."""
    keys = [k for d in report.group_by for k in DIMENSION_KEYS[d]]
    rows = [
        [_plain(g.keys.get(k)) for k in keys] + counter_values(g.counters) for g in report.groups
    ]
    if keys:
        rows.append(["total"] + [None] * (len(keys) - 1) + counter_values(report.totals))
    else:
        rows.append(counter_values(report.totals))
    return Table(columns=[*keys, *COUNTER_HEADERS], rows=rows)


def _plain(value: Any) -> Any:
    return str(value) if value is not None and not isinstance(value, int | float | str) else value


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-") or "x"


def file_name(
    stem: str, dimensions: Sequence[Dimension], filters: IndicatorFilters, extension: str
) -> str:
    """e.g. ``indikator_per-province-year_year-2024_sex-F.csv``: what is in it, from the name."""
    parts = [stem]
    if dimensions:
        parts.append("per-" + "-".join(d.value for d in dimensions))
    for key, value in filters.describe().items():
        parts.append(f"{key}-{_slug(value)}")
    return "_".join(parts) + "." + extension


def download_headers(name: str, data_as_of: datetime | None) -> dict[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Data-As-Of": data_as_of.isoformat() if data_as_of else "",
    }


def to_csv(table: Table) -> bytes:
    """UTF-8 with a BOM, comma-separated, no cell a formula (bekal.shared.spreadsheets)."""
    return spreadsheets.csv_bytes(table.columns, table.rows)


def to_xlsx(table: Table, *, sheet: str, data_as_of: datetime | None) -> bytes:
    """One sheet: the header row (bold, frozen) and the rows, each cell a number or a string,
    never a formula or a link whatever it starts with; data-as-of in the properties."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(
        buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    book.set_properties(
        {
            "title": sheet,
            "comments": f"data_as_of={data_as_of.isoformat() if data_as_of else ''}",
        }
    )
    ws = book.add_worksheet(sheet[:31])
    bold = book.add_format({"bold": True})
    for j, name in enumerate(table.columns):
        ws.write_string(0, j, name, bold)
    ws.freeze_panes(1, 0)
    for i, row in enumerate(table.rows, start=1):
        for j, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, int | float) and not isinstance(value, bool):
                ws.write_number(i, j, value)
            else:
                ws.write_string(i, j, str(value))
    book.close()
    return buffer.getvalue()
