"""Live enrolments ending (release, transfer, death, consent, cancellation) and the
waiting list moving up into the seats they free."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import (
    EnrollmentWithdrawn,
    ParticipantEnrolled,
    ParticipantLeftWaitlist,
    WithdrawalReason,
)
from bekal.shared.messaging.outbox import add_event
from bekal.training import domain
from bekal.training.domain import EnrollmentStatus, SessionStatus
from bekal.training.models import Enrollment, TrainingSession
from bekal.training.services.common import LIVE_STATUSES


async def withdraw_from_open_sessions(
    *,
    session: AsyncSession,
    participant_id: uuid.UUID,
    reason: WithdrawalReason,
    on: date,
    moved_to_facility_id: uuid.UUID | None = None,
) -> list[EnrollmentWithdrawn]:
    """End the person's live enrolments in open sessions; each ending is published once.

    A waiting-list entry ends with ParticipantLeftWaitlist instead (it never was an enrolment).
    Each freed seat goes to the first on that session's waiting list. A second delivery finds
    nothing still live and so publishes nothing.
    """
    session_ids = select(Enrollment.session_id).where(
        Enrollment.participant_id == participant_id, Enrollment.status.in_(LIVE_STATUSES)
    )
    # Lock the sessions first (in id order, like every other writer) so a completion of the
    # same session cannot interleave with this withdrawal and overwrite it.
    sessions = {
        s.id: s
        for s in (
            await session.scalars(
                select(TrainingSession)
                .where(TrainingSession.id.in_(session_ids))
                .order_by(TrainingSession.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).all()
    }
    if not sessions:
        return []
    enrollments = (
        await session.scalars(
            select(Enrollment)
            .where(
                Enrollment.participant_id == participant_id,
                Enrollment.session_id.in_(list(sessions)),
                Enrollment.status.in_(LIVE_STATUSES),
            )
            .execution_options(populate_existing=True)
        )
    ).all()
    published: list[EnrollmentWithdrawn] = []
    freed: set[uuid.UUID] = set()
    for enrollment in enrollments:
        ts = sessions[enrollment.session_id]
        if not domain.is_withdrawable(
            enrollment_status=EnrollmentStatus(enrollment.status),
            session_status=SessionStatus(ts.status),
            session_facility_id=ts.facility_id,
            moved_to_facility_id=moved_to_facility_id,
        ):
            continue
        event = end_enrollment(session=session, enrollment=enrollment, reason=reason, on=on)
        if event is not None:
            published.append(event)
            freed.add(ts.id)
    for sid in sorted(freed):
        await promote_waitlisted(session=session, ts=sessions[sid], today=on)
    return published


def end_enrollment(
    *, session: AsyncSession, enrollment: Enrollment, reason: WithdrawalReason, on: date
) -> EnrollmentWithdrawn | None:
    """Withdraw one live enrolment; returns the withdrawal event if it held a seat."""
    was_waiting = enrollment.status == EnrollmentStatus.WAITLISTED.value
    enrollment.status = EnrollmentStatus.WITHDRAWN.value
    enrollment.withdrawal_reason = reason.value
    enrollment.withdrawn_on = on
    enrollment.updated_at = utcnow()
    if was_waiting:
        add_event(
            session,
            ParticipantLeftWaitlist(
                enrollment_id=enrollment.id,
                session_id=enrollment.session_id,
                participant_id=enrollment.participant_id,
                reason=reason.value,
                left_on=on,
            ),
        )
        return None
    event = EnrollmentWithdrawn(
        enrollment_id=enrollment.id,
        session_id=enrollment.session_id,
        participant_id=enrollment.participant_id,
        reason=reason,
        withdrawn_on=on,
    )
    add_event(session, event)
    return event


async def _seats_taken(*, session: AsyncSession, session_id: uuid.UUID) -> int:
    statuses = await session.scalars(
        select(Enrollment.status).where(Enrollment.session_id == session_id)
    )
    return sum(
        1
        for status in statuses
        if status not in (EnrollmentStatus.WITHDRAWN.value, EnrollmentStatus.WAITLISTED.value)
    )


async def promote_waitlisted(
    *, session: AsyncSession, ts: TrainingSession, today: date
) -> list[Enrollment]:
    """Give free seats of an open session to the waiting list, first come first served.

    The same enrolment row moves up; ParticipantEnrolled is published with its id.
    """
    if SessionStatus(ts.status) not in domain.LIVE_SESSION_STATUSES:
        return []
    await session.flush()
    free = domain.seats_free(
        capacity=ts.capacity, seats_taken=await _seats_taken(session=session, session_id=ts.id)
    )
    if free == 0:
        return []
    waiting = (
        await session.scalars(
            select(Enrollment)
            .where(
                Enrollment.session_id == ts.id,
                Enrollment.status == EnrollmentStatus.WAITLISTED.value,
            )
            .order_by(Enrollment.created_at, Enrollment.id)
            .limit(free)
            .execution_options(populate_existing=True)
        )
    ).all()
    for enrollment in waiting:
        enrollment.status = EnrollmentStatus.ENROLLED.value
        enrollment.enrolled_on = today
        enrollment.updated_at = utcnow()
        add_event(
            session,
            ParticipantEnrolled(
                enrollment_id=enrollment.id,
                session_id=ts.id,
                participant_id=enrollment.participant_id,
                enrolled_on=today,
            ),
        )
    return list(waiting)
