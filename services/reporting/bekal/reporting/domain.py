"""Indicator rules: grouping dimensions, counters, rates, and how late or repeated facts merge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from bekal.shared.events.catalogue import WithdrawalReason

# Rates are for people to read on a dashboard: four decimals is more than enough.
RATE_DECIMALS = 4


class Dimension(StrEnum):
    """What indicators may be grouped by (``group_by`` in the API)."""

    FACILITY = "facility"
    PROVINCE = "province"
    PROGRAM = "program"
    YEAR = "year"
    SECTOR = "sector"
    SEX = "sex"
    SESSION = "session"


# Dimensions that name a single facility or session: only roles allowed to see detail may.
DETAIL_DIMENSIONS = frozenset({Dimension.FACILITY, Dimension.SESSION})


# The output keys each dimension contributes to a row: the id first, then its labels.
DIMENSION_KEYS: dict[Dimension, tuple[str, ...]] = {
    Dimension.FACILITY: ("facility_id", "facility_code", "facility_name"),
    Dimension.PROVINCE: ("province",),
    Dimension.PROGRAM: ("program_id", "program_code", "program_title"),
    Dimension.YEAR: ("year",),
    Dimension.SECTOR: ("sector",),
    Dimension.SEX: ("sex",),
    Dimension.SESSION: ("session_id", "session_start_date", "session_end_date"),
}

# What a group is sorted by within each dimension: codes read better than ids; the id breaks
# ties and orders a facility or program whose description has not arrived yet.
_SORT_FIELDS: dict[Dimension, tuple[str, ...]] = {
    Dimension.FACILITY: ("facility_code", "facility_id"),
    Dimension.PROVINCE: ("province",),
    Dimension.PROGRAM: ("program_code", "program_id"),
    Dimension.YEAR: ("year",),
    Dimension.SECTOR: ("sector",),
    Dimension.SEX: ("sex",),
    Dimension.SESSION: ("session_start_date", "session_id"),
}


class InvalidGroupBy(ValueError):
    """``group_by`` named something that is not a dimension."""

    def __init__(self, unknown: list[str]) -> None:
        allowed = ", ".join(d.value for d in Dimension)
        super().__init__(
            f"group_by tidak dikenal: {', '.join(unknown)}. Pilihan yang tersedia: {allowed}"
        )
        self.unknown = unknown


def parse_group_by(raw: str | None) -> list[Dimension]:
    """``"province,year"`` → [PROVINCE, YEAR]; empty means totals only; repeats count once."""
    if raw is None:
        return []
    names = [part.strip().lower() for part in raw.split(",")]
    names = [n for n in names if n]
    known = {d.value for d in Dimension}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidGroupBy(unknown)
    return [Dimension(n) for n in dict.fromkeys(names)]


def reporting_year(end_date: date) -> int:
    """A session counts in the year it ends (a course across New Year belongs to the later one)."""
    return end_date.year


def completion_rate(completed: int, not_completed: int) -> float | None:
    """Completed over those with an outcome; withdrawn and still-enrolled people are left out.

    None when nobody has an outcome yet, so "no data" is never shown as a 0 % rate.
    """
    decided = completed + not_completed
    if decided == 0:
        return None
    return round(completed / decided, RATE_DECIMALS)


def certification_rate(certified: int, completed: int) -> float | None:
    """Certified over completed; None when nobody completed."""
    if completed == 0:
        return None
    return round(certified / completed, RATE_DECIMALS)


def mean_days(total_days: int, count: int) -> float | None:
    """Mean days from completion to certificate, one decimal; None without any known pair."""
    if count == 0:
        return None
    return round(total_days / count, 1)


def ready_to_trade(
    *, identity_card: bool, bank_account: bool, nib: bool, starter_tools: bool
) -> bool:
    """A graduate can trade on release with an identity card, a bank account, a business
    number (NIB) and starter tools: the whole readiness checklist."""
    return identity_card and bank_account and nib and starter_tools


def withdrawn_column(reason: WithdrawalReason | str) -> str:
    """The name of the SQL result column counting withdrawals for one reason."""
    return f"withdrawn_{WithdrawalReason(reason).value}"


@dataclass(frozen=True)
class Counters:
    """The counts of one group (or the totals)."""

    enrolled: int = 0
    withdrawn: int = 0
    withdrawn_by_reason: dict[str, int] = field(default_factory=dict)
    completed: int = 0
    not_completed: int = 0
    certified: int = 0
    # Certificates whose completion date is known, and the days from completion to issue summed.
    days_to_certificate_count: int = 0
    days_to_certificate_total: int = 0
    # Graduates (completed) by what happened after: released, and the latest follow-up.
    graduates_released: int = 0
    # Of those, people whose readiness checklist had everything to trade (ID card, bank
    # account, NIB, starter tools).
    graduates_released_ready: int = 0
    # Demand: places asked for on full sessions' waiting lists, and those still waiting.
    waitlisted: int = 0
    waiting: int = 0
    business_with_nib: int = 0
    business_without_nib: int = 0
    employed: int = 0

    @property
    def new_entrepreneurs(self) -> int:
        """Graduates who started a business, with or without a business number (NIB)."""
        return self.business_with_nib + self.business_without_nib

    @property
    def completion_rate(self) -> float | None:
        return completion_rate(self.completed, self.not_completed)

    @property
    def certification_rate(self) -> float | None:
        return certification_rate(self.certified, self.completed)

    @property
    def mean_days_to_certificate(self) -> float | None:
        return mean_days(self.days_to_certificate_total, self.days_to_certificate_count)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Counters:
        """Read the aggregate columns of one SQL result row (NULL sums are zero)."""

        def n(name: str) -> int:
            return int(row.get(name) or 0)

        return cls(
            enrolled=n("enrolled"),
            withdrawn=n("withdrawn"),
            # Every reason is listed, zeros included, so a dashboard's columns never shift.
            withdrawn_by_reason={r.value: n(withdrawn_column(r)) for r in WithdrawalReason},
            completed=n("completed"),
            not_completed=n("not_completed"),
            certified=n("certified"),
            days_to_certificate_count=n("days_to_certificate_count"),
            days_to_certificate_total=n("days_to_certificate_total"),
            graduates_released=n("graduates_released"),
            graduates_released_ready=n("graduates_released_ready"),
            waitlisted=n("waitlisted"),
            waiting=n("waiting"),
            business_with_nib=n("business_with_nib"),
            business_without_nib=n("business_without_nib"),
            employed=n("employed"),
        )


@dataclass(frozen=True)
class IndicatorGroup:
    """One row of the report: the grouping keys (only of the requested dimensions) and counts."""

    keys: dict[str, Any]
    counters: Counters


def group_keys(dimensions: list[Dimension], row: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of one group, in the order the dimensions were asked for."""
    return {key: row.get(key) for d in dimensions for key in DIMENSION_KEYS[d]}


def sort_groups(groups: list[IndicatorGroup], dimensions: list[Dimension]) -> list[IndicatorGroup]:
    """A stable order on every database: by each dimension in turn, unknown (null) values last."""

    def key(group: IndicatorGroup) -> tuple[tuple[bool, Any], ...]:
        parts: list[tuple[bool, Any]] = []
        for d in dimensions:
            for name in _SORT_FIELDS[d]:
                value = group.keys.get(name)
                if value is None:
                    parts.append((True, 0 if d is Dimension.YEAR else ""))
                else:
                    parts.append((False, int(value) if d is Dimension.YEAR else str(value)))
        return tuple(parts)

    return sorted(groups, key=key)


# --- merging facts that arrive late, early or twice -----------------------------------------


class SessionStatus(StrEnum):
    PLANNED = "planned"
    OPEN = "open"  # nominations accepted
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


_SESSION_STAGE = {
    SessionStatus.PLANNED: 0,
    SessionStatus.OPEN: 1,
    SessionStatus.RUNNING: 2,
    SessionStatus.COMPLETED: 3,
    SessionStatus.CANCELLED: 3,
}


def merge_session_status(current: str | None, incoming: SessionStatus) -> SessionStatus:
    """A session only moves forward: a late "scheduled" never undoes "started" or "completed"."""
    if current is None:
        return incoming
    now = SessionStatus(current)
    return incoming if _SESSION_STAGE[incoming] >= _SESSION_STAGE[now] else now


class EnrollmentStatus(StrEnum):
    ENROLLED = "enrolled"
    WITHDRAWN = "withdrawn"
    COMPLETED = "completed"
    NOT_COMPLETED = "not_completed"
    # The duplicate left behind when two records of one person were enrolled in the same
    # session and training folded them into one: counted nowhere, the kept enrolment counts.
    MERGED = "merged"


def merge_enrollment_status(current: str | None, incoming: EnrollmentStatus) -> EnrollmentStatus:
    """An outcome (withdrawn, completed, not completed) is never undone by a late "enrolled".

    A folded-away duplicate stays folded: no late or replayed event of it counts it again.
    """
    if current == EnrollmentStatus.MERGED.value or incoming is EnrollmentStatus.MERGED:
        return EnrollmentStatus.MERGED
    if current is None or incoming is not EnrollmentStatus.ENROLLED:
        return incoming
    return EnrollmentStatus(current)


def is_newer(incoming: datetime | None, current: datetime | None) -> bool:
    """Whether a whole-state fact stamped ``incoming`` may replace one stamped ``current``.

    Equal or unknown times apply: the topic keeps one aggregate's events in order, so only a
    strictly older fact (a late replay) is refused.
    """
    if incoming is None or current is None:
        return True
    return incoming >= current


def is_later_follow_up(incoming: tuple[int, date], current: tuple[int | None, date | None]) -> bool:
    """A follow-up replaces the kept one if its checkpoint is later, or the same and not older."""
    if current[0] is None or current[1] is None:
        return True
    return incoming >= (current[0], current[1])


def later(a: datetime | None, b: datetime | None) -> datetime | None:
    """The newest of two times; data-as-of only moves forward."""
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


# --- targets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetProgress:
    """One year: what was achieved that year and up to its end, against the targets."""

    year: int
    target_annual: int | None
    target_cumulative: int | None
    new_entrepreneurs: int
    new_entrepreneurs_cumulative: int
    certified: int
    certified_cumulative: int

    @property
    def progress_annual(self) -> float | None:
        return share(self.new_entrepreneurs, self.target_annual)

    @property
    def progress_cumulative(self) -> float | None:
        return share(self.new_entrepreneurs_cumulative, self.target_cumulative)


def share(achieved: int, target: int | None) -> float | None:
    """Achieved over target, 4 decimals (may exceed 1); None without a (positive) target."""
    if not target:
        return None
    return round(achieved / target, RATE_DECIMALS)


def progress_by_year(
    achieved: Mapping[int, tuple[int, int]],
    targets: Mapping[int, tuple[int | None, int | None]],
) -> list[TargetProgress]:
    """``achieved``: year → (new entrepreneurs, certified); ``targets``: year → (annual,
    cumulative). Every year from the first with either to the last, gaps included, so the
    cumulative figures run on."""
    years = set(achieved) | set(targets)
    if not years:
        return []
    out: list[TargetProgress] = []
    running_new = running_certified = 0
    for year in range(min(years), max(years) + 1):
        new, certified = achieved.get(year, (0, 0))
        running_new += new
        running_certified += certified
        annual, cumulative = targets.get(year, (None, None))
        out.append(
            TargetProgress(
                year=year,
                target_annual=annual,
                target_cumulative=cumulative,
                new_entrepreneurs=new,
                new_entrepreneurs_cumulative=running_new,
                certified=certified,
                certified_cumulative=running_certified,
            )
        )
    return out
