"""What several training use cases share: refusals as problems, live statuses, names."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import NamedTuple, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.problems import Conflict, Problem, RuleViolation
from bekal.training.domain import EnrollmentStatus, RuleBroken
from bekal.training.models import Enrollment, Participant


def refused(rule: RuleBroken) -> Problem:
    errors = [{"field": rule.field, "message": rule.message}]
    if rule.conflict:
        return Conflict(rule.message, errors=errors)
    return RuleViolation(rule.message, errors=errors)


def invalid(field: str, message: str) -> RuleViolation:
    return RuleViolation(message, errors=[{"field": field, "message": message}])


# Enrolments that hold a seat (or a place in the queue) in an open session.
LIVE_STATUSES = (EnrollmentStatus.ENROLLED.value, EnrollmentStatus.WAITLISTED.value)


async def enrollments_by_participant(
    *, session: AsyncSession, session_id: uuid.UUID
) -> dict[uuid.UUID, Enrollment]:
    rows = await session.scalars(select(Enrollment).where(Enrollment.session_id == session_id))
    return {e.participant_id: e for e in rows.all()}


# An enrolment as the sheets and pages read it, as columns (the fields of ``Enrolled``).
ENROLLED_COLUMNS = (
    Enrollment.id,
    Enrollment.participant_id,
    Enrollment.status,
    Enrollment.withdrawn_on,
    Enrollment.withdrawal_reason,
)


class Enrolled(NamedTuple):
    """What a sheet's checks read of an enrolment, without building its ORM object."""

    id: uuid.UUID
    participant_id: uuid.UUID
    status: str
    withdrawn_on: date | None
    withdrawal_reason: str | None


async def enrolled_by_participant(
    *, session: AsyncSession, session_id: uuid.UUID
) -> dict[uuid.UUID, Enrolled]:
    """A session's enrolments by participant, as columns: for the attendance and assessment
    sheets, which check a few fields of every enrolment and change none of them."""
    rows = await session.execute(
        select(*ENROLLED_COLUMNS).where(Enrollment.session_id == session_id)
    )
    return {row.participant_id: Enrolled(*row) for row in rows}


class _OfParticipant(Protocol):
    @property
    def participant_id(self) -> uuid.UUID: ...


async def participant_names(
    *, session: AsyncSession, enrollments: Sequence[_OfParticipant]
) -> dict[uuid.UUID, str]:
    if not enrollments:
        return {}
    return dict(
        (
            await session.execute(
                select(Participant.id, Participant.full_name).where(
                    Participant.id.in_([e.participant_id for e in enrollments])
                )
            )
        ).all()
    )
