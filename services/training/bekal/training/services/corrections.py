"""Corrections after completion: attendance or assessments fixed, outcomes decided again."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import EnrollmentOutcome
from bekal.training import domain
from bekal.training.domain import AttendanceStatus, RuleBroken, SessionStatus
from bekal.training.models import Assessment, AssessmentChange, Enrollment
from bekal.training.schemas import CorrectionCreate
from bekal.training.services.attendance import write_day
from bekal.training.services.common import enrollments_by_participant, invalid, refused
from bekal.training.services.outcomes import DECIDED, redecide
from bekal.training.services.sessions import get_session


async def correct_outcomes(
    *,
    session: AsyncSession,
    session_id: uuid.UUID,
    data: CorrectionCreate,
    changed_by: str,
    today: date,
) -> list[tuple[Enrollment, EnrollmentOutcome, EnrollmentOutcome]]:
    """The documented way to change a completed session: fix attendance or assessments, with a
    reason, and decide the outcomes again. Each changed outcome publishes OutcomeCorrected;
    one that becomes ``completed`` also publishes ParticipantCompleted (for the certificate).
    Returns (enrolment, previous outcome, new outcome) for every outcome that changed.
    """
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_correctable(SessionStatus(ts.status))
    except RuleBroken as rule:
        raise refused(rule) from rule
    by_participant = await enrollments_by_participant(session=session, session_id=ts.id)

    def decided(field: str, pid: uuid.UUID) -> Enrollment:
        found = by_participant.get(pid)
        if found is None or found.status not in DECIDED:
            raise invalid(field, "Peserta tidak memiliki hasil akhir pada sesi ini.")
        return found

    days: dict[date, dict[uuid.UUID, AttendanceStatus]] = defaultdict(dict)
    touched: set[uuid.UUID] = set()
    for i, a in enumerate(data.attendance):
        enrollment = decided(f"attendance.{i}.participant_id", a.participant_id)
        try:
            domain.check_attendance_date(a.date, ts.start_date, ts.end_date)
        except RuleBroken:
            raise invalid(
                f"attendance.{i}.date", f"Tanggal {a.date.isoformat()} di luar jadwal sesi."
            ) from None
        days[a.date][enrollment.id] = a.status
        touched.add(enrollment.id)
    unit_codes = {u["code"] for u in ts.competency_units}
    for i, r in enumerate(data.assessments):
        enrollment = decided(f"assessments.{i}.participant_id", r.participant_id)
        if r.unit_code not in unit_codes:
            raise invalid(
                f"assessments.{i}.unit_code",
                f"Unit kompetensi '{r.unit_code}' bukan bagian dari program sesi ini.",
            )
        touched.add(enrollment.id)
    if data.assessments and not data.assessor:
        raise invalid("assessor", "Nama penilai wajib diisi untuk koreksi penilaian.")
    for day, statuses in sorted(days.items()):
        await write_day(
            session=session,
            ts=ts,
            day=day,
            statuses=statuses,
            changed_by=changed_by,
            reason=data.reason,
            replace_day=False,
        )
    now = utcnow()
    for r in data.assessments:
        enrollment_id = by_participant[r.participant_id].id
        row = await session.scalar(
            select(Assessment).where(
                Assessment.enrollment_id == enrollment_id, Assessment.unit_code == r.unit_code
            )
        )
        before = row.result if row is not None else None
        if before != r.result.value:
            session.add(
                AssessmentChange(
                    id=uuid.uuid4(),
                    session_id=ts.id,
                    enrollment_id=enrollment_id,
                    unit_code=r.unit_code,
                    previous_result=before,
                    result=r.result.value,
                    assessor=data.assessor or "",
                    changed_by=changed_by,
                    reason=data.reason,
                    changed_at=now,
                )
            )
        if row is None:
            row = Assessment(
                id=uuid.uuid4(),
                session_id=ts.id,
                enrollment_id=enrollment_id,
                unit_code=r.unit_code,
            )
            session.add(row)
        row.result = r.result.value
        row.assessor = data.assessor or ""
        row.assessed_at = now
    await session.flush()
    enrollments = [e for e in by_participant.values() if e.id in touched]
    changed: list[tuple[Enrollment, EnrollmentOutcome, EnrollmentOutcome]] = []
    for enrollment in sorted(enrollments, key=lambda e: (e.created_at, e.id)):
        change = await redecide(
            session=session, ts=ts, enrollment=enrollment, reason=data.reason, today=today
        )
        if change is not None:
            changed.append((enrollment, *change))
    ts.updated_at = now
    return changed


async def assessment_history(
    *, session: AsyncSession, session_id: uuid.UUID
) -> list[AssessmentChange]:
    """Every correction of a unit's result in a session, oldest first."""
    rows = await session.scalars(
        select(AssessmentChange)
        .where(AssessmentChange.session_id == session_id)
        .order_by(AssessmentChange.changed_at, AssessmentChange.id)
    )
    return list(rows.all())
