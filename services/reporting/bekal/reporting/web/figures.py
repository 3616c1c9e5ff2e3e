"""The dashboard's figures, read server-side through the API's own endpoint functions (so under
the API's rules: READER_ROLES, check_detail for a facility or a session) and laid out for the
templates with the names people read (labels.py)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from bekal.reporting import labels
from bekal.reporting.api import indicators
from bekal.reporting.schemas import (
    IndicatorCounters,
    IndicatorRow,
    IndicatorsPublic,
    TargetProgressPublic,
)
from bekal.shared.auth import Principal
from bekal.shared.events.catalogue import Sex, WithdrawalReason
from bekal.shared.web import FormErrors

DASH = "\u2013"  # between the ends of a range: 2-6 (en dash)
# Western Indonesia Time: Jakarta, Sumatra, West and Central Kalimantan; no daylight saving.
WIB = timezone(timedelta(hours=7), "WIB")
FILTER_NAMES = ("year", "province", "program_id", "sector", "sex")
FILTER_LABELS = {
    "year": "Tahun",
    "province": "Provinsi",
    "program_id": "Program",
    "sector": "Sektor",
    "sex": "Jenis kelamin",
}
# The table the downloads carry: one row per province, program and year.
EXPORT_GROUP_BY = "province,program,year"
_CHOOSE = "Pilih salah satu pilihan yang tersedia."


@dataclass(frozen=True)
class Filters:
    """The dashboard's filters as given in the address (``values``, for the form and links) and
    as checked; a value that is not a valid choice is reported and left out."""

    values: dict[str, str] = field(default_factory=dict)
    errors: FormErrors = field(default_factory=FormErrors)
    year: int | None = None
    province: str | None = None
    program_id: uuid.UUID | None = None
    sector: str | None = None
    sex: Sex | None = None

    def query(
        self, group_by: str | None = None, *, facility_id: uuid.UUID | None = None
    ) -> indicators.IndicatorQuery:
        return indicators.build_query(
            group_by=group_by,
            year=self.year,
            province=self.province,
            facility_id=facility_id,
            program_id=self.program_id,
            sector=self.sector,
            sex=self.sex,
        )

    def link(self, path: str, **extra: str) -> str:
        """``path`` with these filters (and ``extra``) in its query, empty ones left out."""
        params = {k: v for k, v in self.values.items() if k not in self.errors} | extra
        return f"{path}?{urlencode(params)}" if params else path

    @property
    def is_set(self) -> bool:
        return any(v is not None for v in self._checked())

    def _checked(self) -> tuple[object, ...]:
        return (self.year, self.province, self.program_id, self.sector, self.sex)


def read_filters(params: Mapping[str, str]) -> Filters:
    values = {n: params[n].strip() for n in FILTER_NAMES if (params.get(n) or "").strip()}
    errors = FormErrors()
    checked: dict[str, Any] = {}
    if "year" in values:
        year = values["year"]
        if year.isdigit() and 1900 <= int(year) <= 2100:
            checked["year"] = int(year)
        else:
            errors.add("year", "Tahun tidak valid; isi dengan empat angka, misalnya 2024.")
    for name in ("province", "sector"):
        if name in values:
            if len(values[name]) <= 100:
                checked[name] = values[name]
            else:
                errors.add(name, _CHOOSE)
    if "program_id" in values:
        try:
            checked["program_id"] = uuid.UUID(values["program_id"])
        except ValueError:
            errors.add("program_id", _CHOOSE)
    if "sex" in values:
        if values["sex"] in {s.value for s in Sex}:
            checked["sex"] = Sex(values["sex"])
        else:
            errors.add("sex", _CHOOSE)
    return Filters(values=values, errors=errors, **checked)


async def read(
    session: AsyncSession, principal: Principal, query: indicators.IndicatorQuery
) -> IndicatorsPublic:
    """One read of the indicators, as GET /api/v1/indicators answers it to ``principal``.

    Each read ends its transaction: a read on PostgreSQL opens one snapshot of its own
    (REPEATABLE READ, chosen when its connection is taken), as each request of the API does.
    """
    try:
        report: IndicatorsPublic = await indicators.get_indicators(
            session=session, principal=principal, query=query
        )
        return report
    finally:
        await session.rollback()


# --- how numbers read ----------------------------------------------------------------------


def angka(value: int | str | None) -> str:
    """1234 → "1.234"; a figure withheld as text ("<5") is shown as it is."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}".replace(",", ".")
    return str(value)


def persen(value: float | None) -> str:
    """0.6667 → "66,7%"; no rate (nobody with an outcome yet) → "—", never 0 %."""
    if value is None:
        return "—"
    text = f"{value * 100:.1f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") + "%"


def waktu(value: datetime | None) -> str:
    if value is None:
        return "belum ada data"
    # SQLite gives the time back without its zone: it was stored in UTC.
    local = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(WIB)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year} pukul {local:%H.%M} WIB"


_MONTHS = (
    "Januari Februari Maret April Mei Juni Juli Agustus September Oktober November Desember"
).split()


def bar(value: int | str, largest: int) -> int:
    """A bar's length in percent of the largest, at least 1 for a figure above zero."""
    if not isinstance(value, int) or value <= 0 or largest <= 0:
        return 0
    return max(1, round(100 * value / largest))


def withdrawals(counters: IndicatorCounters) -> list[tuple[str, str, int]]:
    """(reason, its name, count) for every reason, zeros included, "other" last."""
    return [
        (r.value, labels.withdrawal_label(r), counters.withdrawn_by_reason.get(r.value, 0))
        for r in WithdrawalReason
    ]


# --- the dashboard's sections --------------------------------------------------------------


@dataclass(frozen=True)
class TargetBar:
    year: int
    label: str
    achieved: int
    goal: int | None
    width: int
    progress: float | None
    note: str | None


@dataclass(frozen=True)
class TargetBars:
    bars: list[TargetBar]
    # Years between the first and the last shown with neither a target nor a graduate: named in
    # one sentence instead of a row of empty bars each.
    quiet_years: str | None


def target_bars(
    rows: list[TargetProgressPublic], by_year: Mapping[int, IndicatorCounters]
) -> TargetBars:
    """One bar per year: against the annual target, else the cumulative one, else (no target)
    on the scale of the best year; a bar at zero says why in words."""
    best = max([r.new_entrepreneurs for r in rows], default=0)
    bars, quiet = [], []
    for r in rows:
        cumulative = r.target_annual is None and r.target_cumulative is not None
        goal = r.target_cumulative if cumulative else r.target_annual
        achieved = r.new_entrepreneurs_cumulative if cumulative else r.new_entrepreneurs
        graduates = by_year[r.year].completed if r.year in by_year else 0
        if goal is None and not achieved and not graduates:
            quiet.append(r.year)
            continue
        kind = " (kumulatif)" if cumulative else " (tahunan)" if goal is not None else ""
        bars.append(
            TargetBar(
                year=r.year,
                label=f"{r.year}{kind}",
                achieved=achieved,
                goal=goal,
                width=bar(achieved, max(goal or 0, achieved) if goal else best),
                progress=r.progress_cumulative if cumulative else r.progress_annual,
                note=None if achieved else _why_none(r.year, cumulative, by_year),
            )
        )
    return TargetBars(bars=bars, quiet_years=_years(quiet) if quiet else None)


def _years(years: list[int]) -> str:
    """[2018, 2020, 2021, 2022] → "2018, 2020-2022" (with an en dash)."""
    runs: list[list[int]] = []
    for year in sorted(years):
        if runs and year == runs[-1][-1] + 1:
            runs[-1].append(year)
        else:
            runs.append([year])
    return ", ".join(f"{r[0]}{DASH}{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def schedule(start: date | None, end: date | None) -> str:
    """A session's days as people write them: "2-6 September 2024", "30 Juli-3 Agustus 2024"
    (with an en dash)."""
    if start is None or end is None:
        return "—"
    if start == end:
        return f"{start.day} {_MONTHS[start.month - 1]} {start.year}"
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}{DASH}{end.day} {_MONTHS[end.month - 1]} {end.year}"
    head = f"{start.day} {_MONTHS[start.month - 1]}"
    if start.year != end.year:
        head += f" {start.year}"
    return f"{head}{DASH}{end.day} {_MONTHS[end.month - 1]} {end.year}"


def _why_none(year: int, cumulative: bool, by_year: Mapping[int, IndicatorCounters]) -> str:
    """Why no new entrepreneur is counted yet: they are counted from the follow-ups 3, 6 and 12
    months after a graduate's release, so a year without graduates, without released ones or
    without follow-ups has none yet."""
    years = [y for y in by_year if (y <= year if cumulative else y == year)]
    when = f"sampai akhir {year}" if cumulative else f"tahun {year}"
    graduates = sum(by_year[y].completed for y in years)
    released = sum(by_year[y].graduates_released for y in years)
    if graduates == 0:
        return f"Belum ada data tindak lanjut: belum ada lulusan {when}."
    if released == 0:
        return (
            f"Belum ada data tindak lanjut: {angka(graduates)} lulusan {when}, belum ada yang "
            "bebas. Wirausaha baru dihitung dari tindak lanjut 3, 6 dan 12 bulan setelah bebas."
        )
    return (
        f"Belum ada data tindak lanjut yang mencatat usaha baru: {angka(released)} lulusan "
        f"{when} sudah bebas."
    )


def choices(report: IndicatorsPublic, key: str) -> list[tuple[str, str]]:
    """The options of a filter: each value the unfiltered figures have, with its name."""
    out = []
    for row in report.data:
        value = getattr(row, key)
        if value is None:
            continue
        if key == "sector":
            out.append((str(value), labels.sector_label(value)))
        elif key == "program_id":
            out.append((str(value), labels.program_label(row.program_title, row.program_code)))
        else:
            out.append((str(value), str(value)))
    return out


def facility_label(row: IndicatorRow) -> str:
    if row.facility_name and row.facility_code:
        return f"{row.facility_name} ({row.facility_code})"
    return row.facility_name or row.facility_code or labels.UNKNOWN


def session_label(row: IndicatorRow) -> str:
    return labels.program_label(row.program_title, row.program_code)
