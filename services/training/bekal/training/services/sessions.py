"""Sessions: scheduled from a program, then opened, started, completed or cancelled."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import (
    ParticipantLeftWaitlist,
    ParticipantNotCompleted,
    SessionCancelled,
    SessionCompleted,
    SessionOpened,
    SessionScheduled,
    SessionStarted,
    WithdrawalReason,
)
from bekal.shared.messaging.outbox import add_event
from bekal.shared.pagination import Page, paginate, parse_utc
from bekal.shared.problems import NotFound
from bekal.training import domain
from bekal.training.domain import EnrollmentStatus, RuleBroken, SessionStatus
from bekal.training.models import Enrollment, Facility, Program, TrainingSession
from bekal.training.schemas import SessionCreate
from bekal.training.services.common import LIVE_STATUSES, invalid, participant_names, refused
from bekal.training.services.outcomes import completed_event, decide
from bekal.training.services.withdrawals import end_enrollment


async def schedule_session(*, session: AsyncSession, data: SessionCreate) -> TrainingSession:
    try:
        domain.check_session_dates(data.start_date, data.end_date)
    except RuleBroken as rule:
        raise refused(rule) from rule
    program = await session.get(Program, data.program_id)
    if program is None:
        raise invalid("program_id", "Program tidak ditemukan.")
    facility = await session.get(Facility, data.facility_id)
    if facility is None:
        raise invalid("facility_id", "Lapas/rutan belum dikenal (belum diterima dari registri).")
    if not facility.active:
        raise invalid("facility_id", f"{facility.name} tidak aktif.")
    now = utcnow()
    ts = TrainingSession(
        id=uuid.uuid4(),
        program_id=program.id,
        program_version=program.version,
        program_code=program.code,
        program_title=program.title,
        sector=program.sector,
        partner=program.partner,
        hours=program.hours,
        min_attendance_share=program.min_attendance_share,
        competency_units=[dict(u) for u in program.competency_units],
        facility_id=facility.id,
        start_date=data.start_date,
        end_date=data.end_date,
        capacity=data.capacity,
        status=SessionStatus.PLANNED.value,
        instructors=[i.model_dump() for i in data.instructors],
        created_at=now,
        updated_at=now,
    )
    session.add(ts)
    add_event(
        session,
        SessionScheduled(
            session_id=ts.id,
            program_id=ts.program_id,
            program_version=ts.program_version,
            facility_id=ts.facility_id,
            start_date=ts.start_date,
            end_date=ts.end_date,
            capacity=ts.capacity,
        ),
    )
    return ts


async def get_session(
    *, session: AsyncSession, session_id: uuid.UUID, lock: bool = False
) -> TrainingSession:
    """A session; with ``lock`` its row is held until commit, so its writers take turns."""
    query: Select[TrainingSession] = select(TrainingSession).where(TrainingSession.id == session_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    ts = await session.scalar(query)
    if ts is None:
        raise NotFound("Sesi pelatihan tidak ditemukan.")
    return ts


async def list_sessions(
    *,
    session: AsyncSession,
    facility_id: uuid.UUID | None,
    program_id: uuid.UUID | None,
    status: SessionStatus | None,
    limit: int,
    cursor: str | None,
    held_from: date | None = None,
    held_until: date | None = None,
    latest_first: bool = False,
) -> Page[TrainingSession]:
    """Sessions by facility, program, status and the dates they are held on.

    ``held_from`` / ``held_until`` keep the sessions whose days meet that range (one day of it
    is enough). In order of creation, or with ``latest_first`` by start date, latest first.
    """
    query = select(TrainingSession)
    if facility_id is not None:
        query = query.where(TrainingSession.facility_id == facility_id)
    if program_id is not None:
        query = query.where(TrainingSession.program_id == program_id)
    if status is not None:
        query = query.where(TrainingSession.status == status.value)
    if held_from is not None:
        query = query.where(TrainingSession.end_date >= held_from)
    if held_until is not None:
        query = query.where(TrainingSession.start_date <= held_until)
    if latest_first:
        return await paginate(
            session,
            query,
            key=TrainingSession.start_date,
            tiebreak=TrainingSession.id,
            cursor=cursor,
            limit=limit,
            parse_key=date.fromisoformat,
            descending=True,
        )
    return await paginate(
        session,
        query,
        key=TrainingSession.created_at,
        tiebreak=TrainingSession.id,
        cursor=cursor,
        limit=limit,
        parse_key=parse_utc,
    )


async def open_session(
    *, session: AsyncSession, session_id: uuid.UUID, today: date
) -> TrainingSession:
    """A planned session starts taking nominations (SessionOpened)."""
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_can_open(SessionStatus(ts.status))
    except RuleBroken as rule:
        raise refused(rule) from rule
    ts.status = SessionStatus.OPEN.value
    ts.opened_on = today
    ts.updated_at = utcnow()
    add_event(session, SessionOpened(session_id=ts.id, opened_on=today))
    return ts


async def start_session(
    *, session: AsyncSession, session_id: uuid.UUID, today: date
) -> TrainingSession:
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_can_start(SessionStatus(ts.status))
    except RuleBroken as rule:
        raise refused(rule) from rule
    ts.status = SessionStatus.RUNNING.value
    ts.started_on = today
    ts.updated_at = utcnow()
    add_event(session, SessionStarted(session_id=ts.id, started_on=today))
    return ts


async def cancel_session(
    *, session: AsyncSession, session_id: uuid.UUID, reason: str, today: date
) -> TrainingSession:
    """Cancel a planned or running session: every live enrolment and queue entry ends
    (reason ``other``), then SessionCancelled with the reason."""
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_can_cancel(SessionStatus(ts.status))
    except RuleBroken as rule:
        raise refused(rule) from rule
    live = (
        await session.scalars(
            select(Enrollment)
            .where(Enrollment.session_id == ts.id, Enrollment.status.in_(LIVE_STATUSES))
            .order_by(Enrollment.created_at, Enrollment.id)
            .execution_options(populate_existing=True)
        )
    ).all()
    for enrollment in live:
        end_enrollment(
            session=session, enrollment=enrollment, reason=WithdrawalReason.OTHER, on=today
        )
    ts.status = SessionStatus.CANCELLED.value
    ts.cancelled_on = today
    ts.cancellation_reason = reason
    ts.updated_at = utcnow()
    add_event(session, SessionCancelled(session_id=ts.id, reason=reason))
    return ts


async def complete_session(
    *, session: AsyncSession, session_id: uuid.UUID, today: date
) -> TrainingSession:
    """Close the session: an outcome for every participant still enrolled, then SessionCompleted.

    Whoever is still on the waiting list leaves it (the course is over).
    """
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_running(SessionStatus(ts.status), "penutupan")
    except RuleBroken as rule:
        raise refused(rule) from rule
    live = (
        await session.scalars(
            select(Enrollment)
            .where(Enrollment.session_id == ts.id, Enrollment.status.in_(LIVE_STATUSES))
            .order_by(Enrollment.created_at, Enrollment.id)
            .execution_options(populate_existing=True)
        )
    ).all()
    for enrollment in live:
        if enrollment.status == EnrollmentStatus.WAITLISTED.value:
            enrollment.status = EnrollmentStatus.WITHDRAWN.value
            enrollment.withdrawal_reason = WithdrawalReason.OTHER.value
            enrollment.withdrawn_on = today
            add_event(
                session,
                ParticipantLeftWaitlist(
                    enrollment_id=enrollment.id,
                    session_id=ts.id,
                    participant_id=enrollment.participant_id,
                    reason="session_completed",
                    left_on=today,
                ),
            )
    enrollments = [e for e in live if e.status == EnrollmentStatus.ENROLLED.value]
    outcomes = await decide(session=session, ts=ts, enrollments=enrollments)
    names = await participant_names(session=session, enrollments=enrollments)
    now = utcnow()
    completed = not_completed = 0
    for enrollment in enrollments:
        outcome = outcomes[enrollment.id]
        enrollment.attendance_share = outcome.attendance_share
        enrollment.updated_at = now
        if outcome.completed:
            completed += 1
            enrollment.status = EnrollmentStatus.COMPLETED.value
            add_event(
                session,
                completed_event(
                    ts,
                    enrollment,
                    names.get(enrollment.participant_id, ""),
                    outcome.attendance_share,
                ),
            )
        else:
            assert outcome.reason is not None
            not_completed += 1
            enrollment.status = EnrollmentStatus.NOT_COMPLETED.value
            enrollment.not_completed_reason = outcome.reason.value
            add_event(
                session,
                ParticipantNotCompleted(
                    enrollment_id=enrollment.id,
                    session_id=ts.id,
                    participant_id=enrollment.participant_id,
                    reason=outcome.reason,
                    attendance_share=outcome.attendance_share,
                ),
            )
    ts.status = SessionStatus.COMPLETED.value
    ts.completed_on = today
    ts.updated_at = now
    add_event(
        session,
        SessionCompleted(
            session_id=ts.id,
            completed_on=today,
            completed_count=completed,
            not_completed_count=not_completed,
        ),
    )
    return ts
