"""What several training use cases share: refusals as problems, live statuses, names."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

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


async def participant_names(
    *, session: AsyncSession, enrollments: Sequence[Enrollment]
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
