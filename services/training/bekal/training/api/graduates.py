"""Enrolments across sessions, and graduates' readiness checklists and follow-ups."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path

from bekal.shared.db import utcnow
from bekal.shared.idempotency import commit
from bekal.shared.pagination import DEFAULT_LIMIT, Cursor, Limit
from bekal.training.deps import FollowUpRecorder, GraduateRecorder, SessionDep
from bekal.training.domain import EnrollmentStatus
from bekal.training.schemas import (
    EnrollmentPublic,
    EnrollmentsPage,
    FollowUpIn,
    FollowUpPublic,
    FollowUpsPublic,
    ReadinessIn,
    ReadinessPublic,
)
from bekal.training.services import graduates

router = APIRouter(prefix="/api/v1/enrollments", tags=["graduates"])


@router.get(
    "",
    response_model=EnrollmentsPage,
    summary="Enrolments across sessions, e.g. ?status=completed for the graduates to follow up",
)
async def list_enrollments(
    session: SessionDep,
    _: GraduateRecorder,
    status: EnrollmentStatus | None = None,
    participant_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> EnrollmentsPage:
    page, names = await graduates.list_enrollments(
        session=session,
        status=status,
        participant_id=participant_id,
        session_id=session_id,
        limit=limit,
        cursor=cursor,
    )
    data = [
        EnrollmentPublic(
            id=e.id,
            session_id=e.session_id,
            participant_id=e.participant_id,
            full_name=names.get(e.participant_id),
            status=e.status,
            enrolled_on=e.enrolled_on,
            withdrawal_reason=e.withdrawal_reason,
            withdrawn_on=e.withdrawn_on,
            not_completed_reason=e.not_completed_reason,
            attendance_share=e.attendance_share,
            override_reason=e.override_reason,
            override_by=e.override_by,
        )
        for e in page.rows
    ]
    return EnrollmentsPage(data=data, count=page.count, next_cursor=page.next_cursor)


@router.get("/{enrollment_id}/readiness", response_model=ReadinessPublic)
async def get_readiness(
    enrollment_id: uuid.UUID, session: SessionDep, _: GraduateRecorder
) -> ReadinessPublic:
    row = await graduates.get_readiness(session=session, enrollment_id=enrollment_id)
    return ReadinessPublic.model_validate(row)


@router.put(
    "/{enrollment_id}/readiness",
    response_model=ReadinessPublic,
    summary="A graduate's checklist: identity card, bank account, NIB, starter tools",
)
async def record_readiness(
    enrollment_id: uuid.UUID, body: ReadinessIn, session: SessionDep, principal: GraduateRecorder
) -> ReadinessPublic:
    row = await graduates.record_readiness(
        session=session,
        enrollment_id=enrollment_id,
        data=body,
        recorded_by=principal.subject,
        today=utcnow().date(),
    )
    await commit(session)
    return ReadinessPublic.model_validate(row)


@router.get("/{enrollment_id}/follow-ups", response_model=FollowUpsPublic)
async def list_follow_ups(
    enrollment_id: uuid.UUID, session: SessionDep, _: GraduateRecorder
) -> FollowUpsPublic:
    rows = await graduates.list_follow_ups(session=session, enrollment_id=enrollment_id)
    return FollowUpsPublic(data=[FollowUpPublic.model_validate(r) for r in rows], count=len(rows))


@router.put(
    "/{enrollment_id}/follow-ups/{checkpoint_months}",
    response_model=FollowUpPublic,
    summary="A graduate's situation about 3, 6 or 12 months after release",
)
async def record_follow_up(
    enrollment_id: uuid.UUID,
    checkpoint_months: Annotated[int, Path(ge=1, le=24)],
    body: FollowUpIn,
    session: SessionDep,
    principal: FollowUpRecorder,
) -> FollowUpPublic:
    row = await graduates.record_follow_up(
        session=session,
        enrollment_id=enrollment_id,
        checkpoint_months=checkpoint_months,
        data=body,
        recorded_by=principal.subject,
    )
    await commit(session)
    return FollowUpPublic.model_validate(row)
