"""Sessions: scheduling, enrolment, start, attendance, assessment and completion."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from bekal.shared.db import utcnow
from bekal.shared.idempotency import IdempotencyKey, commit, create_once
from bekal.shared.pagination import DEFAULT_LIMIT, Cursor, Limit
from bekal.training.deps import (
    SessionDep,
    TrainingAdmin,
    TrainingOfficer,
    TrainingReader,
)
from bekal.training.domain import SessionStatus
from bekal.training.models import TrainingSession
from bekal.training.schemas import (
    AssessmentSheet,
    AssessmentsSaved,
    AttendanceChangePublic,
    AttendanceHistoryPublic,
    AttendanceSaved,
    AttendanceSheet,
    CorrectionCreate,
    CorrectionsPublic,
    EnrollmentCreate,
    EnrollmentPublic,
    EnrollmentsPublic,
    OutcomeCorrectionPublic,
    SessionCancel,
    SessionCreate,
    SessionPublic,
    SessionsPublic,
)
from bekal.training.services import assessment, attendance, corrections, enrolment, sessions
from bekal.training.services.enrolment import EnrollmentView

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])


def _enrollment_public(view: EnrollmentView) -> EnrollmentPublic:
    enrollment, full_name = view
    return EnrollmentPublic(
        id=enrollment.id,
        session_id=enrollment.session_id,
        participant_id=enrollment.participant_id,
        full_name=full_name,
        status=enrollment.status,
        enrolled_on=enrollment.enrolled_on,
        withdrawal_reason=enrollment.withdrawal_reason,
        withdrawn_on=enrollment.withdrawn_on,
        not_completed_reason=enrollment.not_completed_reason,
        attendance_share=enrollment.attendance_share,
        override_reason=enrollment.override_reason,
        override_by=enrollment.override_by,
    )


def _session_public(ts: TrainingSession, enrollments: list[EnrollmentView]) -> SessionPublic:
    return SessionPublic(
        id=ts.id,
        program_id=ts.program_id,
        program_version=ts.program_version,
        program_code=ts.program_code,
        program_title=ts.program_title,
        hours=ts.hours,
        min_attendance_share=ts.min_attendance_share,
        competency_units=ts.competency_units,
        facility_id=ts.facility_id,
        start_date=ts.start_date,
        end_date=ts.end_date,
        capacity=ts.capacity,
        status=ts.status,
        instructors=ts.instructors,
        opened_on=ts.opened_on,
        started_on=ts.started_on,
        completed_on=ts.completed_on,
        cancelled_on=ts.cancelled_on,
        cancellation_reason=ts.cancellation_reason,
        created_at=ts.created_at,
        enrollments=[_enrollment_public(v) for v in enrollments],
    )


async def _read(session: SessionDep, ts: TrainingSession) -> SessionPublic:
    found = await enrolment.enrollments_of(session=session, session_ids=[ts.id])
    return _session_public(ts, found[ts.id])


@router.post(
    "", status_code=201, response_model=SessionPublic, summary="Plan a program at a facility"
)
async def schedule_session(
    body: SessionCreate,
    request: Request,
    session: SessionDep,
    principal: TrainingAdmin,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def create() -> dict[str, Any]:
        ts = await sessions.schedule_session(session=session, data=body)
        return _session_public(ts, []).model_dump(mode="json")

    return await create_once(
        session,
        request=request,
        principal=principal,
        key=idempotency_key,
        payload=body,
        create=create,
    )


@router.get("", response_model=SessionsPublic)
async def list_sessions(
    session: SessionDep,
    _: TrainingReader,
    facility_id: uuid.UUID | None = None,
    program_id: uuid.UUID | None = None,
    status: SessionStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> SessionsPublic:
    page = await sessions.list_sessions(
        session=session,
        facility_id=facility_id,
        program_id=program_id,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    enrollments = await enrolment.enrollments_of(
        session=session, session_ids=[s.id for s in page.rows]
    )
    return SessionsPublic(
        data=[_session_public(s, enrollments[s.id]) for s in page.rows],
        count=page.count,
        next_cursor=page.next_cursor,
    )


@router.get("/{session_id}", response_model=SessionPublic)
async def get_session(
    session_id: uuid.UUID, session: SessionDep, _: TrainingReader
) -> SessionPublic:
    return await _read(session, await sessions.get_session(session=session, session_id=session_id))


@router.post(
    "/{session_id}/enrollments",
    status_code=201,
    response_model=EnrollmentsPublic,
    summary="Enrol participants: all of them or none",
)
async def enrol(
    session_id: uuid.UUID,
    body: EnrollmentCreate,
    request: Request,
    session: SessionDep,
    principal: TrainingOfficer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def create() -> dict[str, Any]:
        created = await enrolment.enrol(
            session=session,
            session_id=session_id,
            participant_ids=body.participant_ids,
            today=utcnow().date(),
            data=body,
            principal=principal,
        )
        data = [_enrollment_public(v) for v in created]
        return EnrollmentsPublic(data=data, count=len(data)).model_dump(mode="json")

    return await create_once(
        session,
        request=request,
        principal=principal,
        key=idempotency_key,
        payload=body,
        create=create,
    )


@router.post(
    "/{session_id}/open",
    response_model=SessionPublic,
    summary="Open a planned session for nominations (enrolment and the waiting list)",
)
async def open_session(
    session_id: uuid.UUID, session: SessionDep, _: TrainingOfficer
) -> SessionPublic:
    ts = await sessions.open_session(session=session, session_id=session_id, today=utcnow().date())
    await commit(session)
    return await _read(session, ts)


@router.post("/{session_id}/start", response_model=SessionPublic)
async def start_session(
    session_id: uuid.UUID, session: SessionDep, _: TrainingOfficer
) -> SessionPublic:
    ts = await sessions.start_session(session=session, session_id=session_id, today=utcnow().date())
    await commit(session)
    return await _read(session, ts)


@router.put(
    "/{session_id}/attendance",
    response_model=AttendanceSaved,
    summary="Record one day's attendance (sending the day again replaces it)",
)
async def record_attendance(
    session_id: uuid.UUID, body: AttendanceSheet, session: SessionDep, principal: TrainingOfficer
) -> AttendanceSaved:
    count = await attendance.record_attendance(
        session=session, session_id=session_id, sheet=body, changed_by=principal.subject
    )
    await commit(session)
    return AttendanceSaved(date=body.date, count=count)


@router.put("/{session_id}/assessments", response_model=AssessmentsSaved)
async def record_assessments(
    session_id: uuid.UUID, body: AssessmentSheet, session: SessionDep, _: TrainingOfficer
) -> AssessmentsSaved:
    count = await assessment.record_assessments(session=session, session_id=session_id, sheet=body)
    await commit(session)
    return AssessmentsSaved(count=count)


@router.post(
    "/{session_id}/complete",
    response_model=SessionPublic,
    summary="Close the session and decide every participant's outcome",
)
async def complete_session(
    session_id: uuid.UUID, session: SessionDep, _: TrainingOfficer
) -> SessionPublic:
    ts = await sessions.complete_session(
        session=session, session_id=session_id, today=utcnow().date()
    )
    # The answer is read in the same transaction, the outcomes flushed: read after the commit
    # it took a transaction of its own (a connection checked out again, BEGIN and its end)
    # for the rows this one had just written.
    public = await _read(session, ts)
    await commit(session)
    return public


@router.get(
    "/{session_id}/attendance/history",
    response_model=AttendanceHistoryPublic,
    summary="Every attendance change: who set what for whom, when (and why, for corrections)",
)
async def attendance_history(
    session_id: uuid.UUID, session: SessionDep, _: TrainingReader
) -> AttendanceHistoryPublic:
    rows = await attendance.attendance_history(session=session, session_id=session_id)
    data = [
        AttendanceChangePublic(
            date=change.day,
            participant_id=pid,
            enrollment_id=change.enrollment_id,
            previous_status=change.previous_status,
            status=change.status,
            changed_by=change.changed_by,
            changed_at=change.changed_at,
            reason=change.reason,
        )
        for change, pid in rows
    ]
    return AttendanceHistoryPublic(data=data, count=len(data))


@router.post(
    "/{session_id}/enrollments/{enrollment_id}/withdraw",
    response_model=SessionPublic,
    summary="Withdraw one enrolment or waiting-list entry (reason other); the queue moves up",
)
async def withdraw_enrollment(
    session_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    session: SessionDep,
    _: TrainingOfficer,
) -> SessionPublic:
    ts = await enrolment.withdraw_enrollment(
        session=session, session_id=session_id, enrollment_id=enrollment_id, today=utcnow().date()
    )
    await commit(session)
    return await _read(session, ts)


@router.post(
    "/{session_id}/corrections",
    response_model=CorrectionsPublic,
    summary="Correct a completed session's attendance or assessments, with a reason",
)
async def correct_session(
    session_id: uuid.UUID, body: CorrectionCreate, session: SessionDep, principal: TrainingAdmin
) -> CorrectionsPublic:
    """The only change allowed after completion. Outcomes are decided again from the session's
    rules; each one that changes publishes OutcomeCorrected (and ParticipantCompleted when it
    becomes completed). Attendance changes are kept in the history with the reason."""
    changed = await corrections.correct_outcomes(
        session=session,
        session_id=session_id,
        data=body,
        changed_by=principal.subject,
        today=utcnow().date(),
    )
    await commit(session)
    data = [
        OutcomeCorrectionPublic(
            enrollment_id=e.id,
            participant_id=e.participant_id,
            previous_outcome=previous,
            outcome=new,
            not_completed_reason=e.not_completed_reason,
            attendance_share=e.attendance_share,
        )
        for e, previous, new in changed
    ]
    return CorrectionsPublic(data=data, count=len(data))


@router.post(
    "/{session_id}/cancel",
    response_model=SessionPublic,
    summary="Cancel a planned or running session with a reason; every enrolment ends",
)
async def cancel_session(
    session_id: uuid.UUID, body: SessionCancel, session: SessionDep, _: TrainingAdmin
) -> SessionPublic:
    ts = await sessions.cancel_session(
        session=session, session_id=session_id, reason=body.reason, today=utcnow().date()
    )
    await commit(session)
    return await _read(session, ts)
