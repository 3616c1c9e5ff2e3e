"""Use cases: fold events into the projections, and compute indicators with SQL aggregation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Integer, Select, case, func, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.reporting.domain import (
    Counters,
    Dimension,
    EnrollmentStatus,
    IndicatorGroup,
    SessionStatus,
    group_keys,
    is_newer,
    later,
    merge_enrollment_status,
    merge_session_status,
    reporting_year,
    sort_groups,
    withdrawn_column,
)
from bekal.reporting.models import (
    STATE_ROW_ID,
    Certificate,
    Enrollment,
    Facility,
    Program,
    ProjectionState,
    TrainingSession,
)
from bekal.shared.events.catalogue import (
    CertificateIssued,
    FacilityRegistered,
    FacilityUpdated,
    ProgramPublished,
    SessionScheduled,
    WithdrawalReason,
)

log = structlog.get_logger(__name__)


# --- projections ------------------------------------------------------------------------------


async def apply_facility(
    session: AsyncSession, *, event: FacilityRegistered | FacilityUpdated, at: datetime | None
) -> None:
    """Both facility events carry the whole state: keep the newest."""
    row = await session.get(Facility, event.facility_id)
    if row is None:
        row = Facility(id=event.facility_id)
        session.add(row)
    elif not is_newer(at, row.as_of):
        return
    row.code = event.code
    row.name = event.name
    row.kind = event.kind.value
    row.facility_class = event.facility_class.value
    row.province = event.province
    row.regional_office = event.regional_office
    row.active = event.active
    row.as_of = at


async def apply_program(session: AsyncSession, *, event: ProgramPublished) -> None:
    """Reports label a program by its latest version; an older version arriving late is ignored."""
    row = await session.get(Program, event.program_id)
    if row is None:
        row = Program(id=event.program_id)
        session.add(row)
    elif row.version > event.program_version:
        return
    row.version = event.program_version
    row.code = event.code
    row.title = event.title
    row.sector = event.sector
    row.partner = event.partner
    row.hours = event.hours


async def schedule_session(session: AsyncSession, *, event: SessionScheduled) -> None:
    row = await session.get(TrainingSession, event.session_id)
    if row is None:
        row = TrainingSession(id=event.session_id)
        session.add(row)
    row.program_id = event.program_id
    row.program_version = event.program_version
    row.facility_id = event.facility_id
    row.start_date = event.start_date
    row.end_date = event.end_date
    row.year = reporting_year(event.end_date)
    row.capacity = event.capacity
    row.status = merge_session_status(row.status, SessionStatus.PLANNED).value


async def change_session_status(
    session: AsyncSession, *, session_id: uuid.UUID, status: SessionStatus
) -> None:
    """A status event may come before the scheduling one: keep a row with only what is known."""
    row = await session.get(TrainingSession, session_id)
    if row is None:
        session.add(TrainingSession(id=session_id, status=status.value))
        return
    row.status = merge_session_status(row.status, status).value


async def record_enrollment(
    session: AsyncSession,
    *,
    enrollment_id: uuid.UUID,
    session_id: uuid.UUID,
    participant_id: uuid.UUID,
    status: EnrollmentStatus,
    withdrawal_reason: str | None = None,
    not_completed_reason: str | None = None,
    program_id: uuid.UUID | None = None,
    end_date: date | None = None,
) -> None:
    """Upsert one enrolment from any of its events; an outcome is never undone by a late enrol."""
    row = await session.get(Enrollment, enrollment_id)
    if row is None:
        row = Enrollment(id=enrollment_id, session_id=session_id, participant_id=participant_id)
        session.add(row)
        current = None
    else:
        current = row.status
    merged = merge_enrollment_status(current, status)
    row.status = merged.value
    if merged is status and status is not EnrollmentStatus.ENROLLED:
        row.withdrawal_reason = withdrawal_reason
        row.not_completed_reason = not_completed_reason
    if program_id is not None:
        row.program_id = program_id
    if end_date is not None:
        row.year = reporting_year(end_date)


async def record_certificate(session: AsyncSession, *, event: CertificateIssued) -> None:
    """Certificates are immutable facts; one per enrolment is counted."""
    if await session.get(Certificate, event.certificate_id) is not None:
        return
    other = await session.scalar(
        select(Certificate.id).where(Certificate.enrollment_id == event.enrollment_id)
    )
    if other is not None:
        log.warning(
            "second_certificate_for_enrollment_ignored",
            enrollment_id=str(event.enrollment_id),
            kept=str(other),
            ignored=str(event.certificate_id),
        )
        return
    session.add(
        Certificate(
            id=event.certificate_id,
            number=event.number,
            enrollment_id=event.enrollment_id,
            session_id=event.session_id,
            participant_id=event.participant_id,
            program_id=event.program_id,
            issued_on=event.issued_on,
        )
    )


async def advance_data_as_of(session: AsyncSession, *, at: datetime | None) -> None:
    """Data-as-of is the newest event time applied; events arriving out of order never lower it."""
    if at is None:
        return
    state = await session.get(ProjectionState, STATE_ROW_ID, with_for_update=True)
    if state is None:  # the migration makes it; this only guards a hand-made database
        session.add(ProjectionState(id=STATE_ROW_ID, data_as_of=at))
        return
    state.data_as_of = later(state.data_as_of, at)


# --- indicators -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndicatorFilters:
    year: int | None = None
    province: str | None = None
    facility_id: uuid.UUID | None = None
    program_id: uuid.UUID | None = None


@dataclass(frozen=True)
class IndicatorReport:
    group_by: list[Dimension]
    groups: list[IndicatorGroup]
    totals: Counters
    data_as_of: datetime | None


def _one() -> Any:
    # Literal SQL, not bound parameters: PostgreSQL cannot infer the type of a parameter that
    # is only summed after a UNION.
    return literal_column("1", Integer)


def _zero() -> Any:
    return literal_column("0", Integer)


def _flag(condition: ColumnElement[bool]) -> Any:
    return case((condition, _one()), else_=_zero())


def _facts() -> Any:
    """One row per enrolment and one per certificate, each placed in its session's groups.

    The session gives facility, program and year; while it is unknown, a completion or a
    certificate still carries its program (and a completion its end date) and counts there.
    """
    s, e, c = TrainingSession, Enrollment, Certificate
    withdrawn_by_reason = [
        _flag((e.status == EnrollmentStatus.WITHDRAWN.value) & (e.withdrawal_reason == r.value))
        .label(withdrawn_column(r))
        for r in WithdrawalReason
    ]
    enrollments = select(
        s.facility_id.label("facility_id"),
        func.coalesce(s.program_id, e.program_id).label("program_id"),
        func.coalesce(s.year, e.year).label("year"),
        _one().label("enrolled"),
        _flag(e.status == EnrollmentStatus.WITHDRAWN.value).label("withdrawn"),
        *withdrawn_by_reason,
        _flag(e.status == EnrollmentStatus.COMPLETED.value).label("completed"),
        _flag(e.status == EnrollmentStatus.NOT_COMPLETED.value).label("not_completed"),
        _zero().label("certified"),
    ).select_from(e).outerjoin(s, s.id == e.session_id)
    certificates = select(
        s.facility_id.label("facility_id"),
        func.coalesce(s.program_id, c.program_id).label("program_id"),
        func.coalesce(s.year, e.year).label("year"),
        _zero().label("enrolled"),
        _zero().label("withdrawn"),
        *[_zero().label(withdrawn_column(r)) for r in WithdrawalReason],
        _zero().label("completed"),
        _zero().label("not_completed"),
        _one().label("certified"),
    ).select_from(c).outerjoin(s, s.id == c.session_id).outerjoin(e, e.id == c.enrollment_id)
    return union_all(enrollments, certificates).subquery("facts")


def indicator_query(dimensions: list[Dimension], filters: IndicatorFilters) -> Select[Any]:
    """SELECT <dimension columns>, SUM(<counters>) ... GROUP BY <dimension columns>."""
    facts = _facts()
    f, p = Facility, Program
    columns: dict[Dimension, list[Any]] = {
        Dimension.FACILITY: [
            facts.c.facility_id.label("facility_id"),
            f.code.label("facility_code"),
            f.name.label("facility_name"),
        ],
        Dimension.PROVINCE: [f.province.label("province")],
        Dimension.PROGRAM: [
            facts.c.program_id.label("program_id"),
            p.code.label("program_code"),
            p.title.label("program_title"),
        ],
        Dimension.YEAR: [facts.c.year.label("year")],
    }
    counters = ["enrolled", "withdrawn", *[withdrawn_column(r) for r in WithdrawalReason],
                "completed", "not_completed", "certified"]
    keys = [col for d in dimensions for col in columns[d]]
    stmt = select(
        *keys, *[func.coalesce(func.sum(facts.c[name]), 0).label(name) for name in counters]
    ).select_from(facts).outerjoin(f, f.id == facts.c.facility_id).outerjoin(
        p, p.id == facts.c.program_id
    )
    if filters.year is not None:
        stmt = stmt.where(facts.c.year == filters.year)
    if filters.province is not None:
        stmt = stmt.where(f.province == filters.province)
    if filters.facility_id is not None:
        stmt = stmt.where(facts.c.facility_id == filters.facility_id)
    if filters.program_id is not None:
        stmt = stmt.where(facts.c.program_id == filters.program_id)
    if keys:
        stmt = stmt.group_by(*keys)
    return stmt


async def indicators(
    session: AsyncSession, *, group_by: list[Dimension], filters: IndicatorFilters
) -> IndicatorReport:
    """Counts by the requested dimensions and the totals, read from one consistent snapshot."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # Groups and totals are two statements: one snapshot keeps them adding up.
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    groups: list[IndicatorGroup] = []
    if group_by:
        rows = (await session.execute(indicator_query(group_by, filters))).mappings().all()
        groups = [
            IndicatorGroup(keys=group_keys(group_by, row), counters=Counters.from_row(row))
            for row in rows
        ]
    total_row = (await session.execute(indicator_query([], filters))).mappings().one()
    data_as_of = await session.scalar(
        select(ProjectionState.data_as_of).where(ProjectionState.id == STATE_ROW_ID)
    )
    return IndicatorReport(
        group_by=group_by,
        groups=sort_groups(groups, group_by),
        totals=Counters.from_row(total_row),
        data_as_of=data_as_of,
    )
