"""Outcomes: decided from a session's rules and what is recorded, and decided again."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import (
    CompetencyUnit,
    EnrollmentOutcome,
    OutcomeCorrected,
    ParticipantCompleted,
)
from bekal.shared.messaging.outbox import add_event
from bekal.training import domain
from bekal.training.domain import AssessmentResult, AttendanceStatus, EnrollmentStatus
from bekal.training.models import Assessment, AttendanceRecord, Enrollment, TrainingSession
from bekal.training.services.common import participant_names

DECIDED = (EnrollmentStatus.COMPLETED.value, EnrollmentStatus.NOT_COMPLETED.value)


async def decide(
    *, session: AsyncSession, ts: TrainingSession, enrollments: Sequence[Enrollment]
) -> dict[uuid.UUID, domain.Outcome]:
    """Each enrolment's outcome from the session's rules and what is recorded now."""
    ids = [e.id for e in enrollments]
    attendance: dict[uuid.UUID, list[AttendanceStatus]] = defaultdict(list)
    results: dict[uuid.UUID, dict[str, AssessmentResult]] = defaultdict(dict)
    if ids:
        for enrollment_id, status in await session.execute(
            select(AttendanceRecord.enrollment_id, AttendanceRecord.status).where(
                AttendanceRecord.session_id == ts.id, AttendanceRecord.enrollment_id.in_(ids)
            )
        ):
            attendance[enrollment_id].append(AttendanceStatus(status))
        for enrollment_id, unit_code, result in await session.execute(
            select(Assessment.enrollment_id, Assessment.unit_code, Assessment.result).where(
                Assessment.enrollment_id.in_(ids)
            )
        ):
            results[enrollment_id][unit_code] = AssessmentResult(result)
    days = domain.session_days(ts.start_date, ts.end_date)
    unit_codes = [u["code"] for u in ts.competency_units]
    return {
        e.id: domain.completion_outcome(
            days=days,
            attendance=attendance[e.id],
            min_attendance_share=ts.min_attendance_share,
            unit_codes=unit_codes,
            results=results[e.id],
        )
        for e in enrollments
    }


def completed_event(
    ts: TrainingSession, enrollment: Enrollment, name: str, share: float
) -> ParticipantCompleted:
    return ParticipantCompleted(
        enrollment_id=enrollment.id,
        session_id=ts.id,
        participant_id=enrollment.participant_id,
        participant_name=name,
        program_id=ts.program_id,
        program_code=ts.program_code,
        program_title=ts.program_title,
        sector=ts.sector,
        partner=ts.partner,
        competency_units=[CompetencyUnit(**u) for u in ts.competency_units],
        hours=ts.hours,
        start_date=ts.start_date,
        end_date=ts.end_date,
        attendance_share=share,
    )


async def redecide(
    *,
    session: AsyncSession,
    ts: TrainingSession,
    enrollment: Enrollment,
    reason: str,
    today: date,
) -> tuple[EnrollmentOutcome, EnrollmentOutcome] | None:
    """Decide a decided enrolment's outcome again from what is recorded now.

    If the outcome, share or reason changed, OutcomeCorrected is published (and, when it
    becomes completed, ParticipantCompleted for the certificate); returns (previous, new).
    """
    await session.flush()
    outcome = (await decide(session=session, ts=ts, enrollments=[enrollment]))[enrollment.id]
    previous = (
        EnrollmentOutcome.COMPLETED
        if enrollment.status == EnrollmentStatus.COMPLETED.value
        else EnrollmentOutcome.NOT_COMPLETED
    )
    new = domain.outcome_of(outcome)
    reason_now = outcome.reason.value if outcome.reason else None
    if (
        new == previous
        and enrollment.attendance_share == outcome.attendance_share
        and enrollment.not_completed_reason == reason_now
    ):
        return None
    enrollment.status = new.value
    enrollment.attendance_share = outcome.attendance_share
    enrollment.not_completed_reason = reason_now
    enrollment.updated_at = utcnow()
    add_event(
        session,
        OutcomeCorrected(
            enrollment_id=enrollment.id,
            session_id=ts.id,
            participant_id=enrollment.participant_id,
            previous_outcome=previous,
            outcome=new,
            not_completed_reason=outcome.reason,
            attendance_share=outcome.attendance_share,
            reason=reason,
            corrected_on=today,
        ),
    )
    if new == EnrollmentOutcome.COMPLETED and previous != new:
        names = await participant_names(session=session, enrollments=[enrollment])
        add_event(
            session,
            completed_event(
                ts, enrollment, names.get(enrollment.participant_id, ""), outcome.attendance_share
            ),
        )
    return previous, new
