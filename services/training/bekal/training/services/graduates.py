"""Graduates: readiness before release, follow-ups after it, enrolments across sessions."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import FollowUpRecorded, FollowUpSituation, ReadinessRecorded
from bekal.shared.messaging.outbox import add_event
from bekal.shared.pagination import Page, paginate, parse_utc
from bekal.shared.problems import NotFound
from bekal.training import domain
from bekal.training.domain import EnrollmentStatus, RuleBroken
from bekal.training.models import Enrollment, FollowUp, Participant, ReadinessChecklist
from bekal.training.schemas import FollowUpIn, ReadinessIn
from bekal.training.services.common import participant_names, refused


async def _graduate(
    *, session: AsyncSession, enrollment_id: uuid.UUID
) -> tuple[Enrollment, Participant | None]:
    enrollment = await session.get(Enrollment, enrollment_id)
    if enrollment is None:
        raise NotFound("Pendaftaran tidak ditemukan.")
    try:
        domain.check_graduate(EnrollmentStatus(enrollment.status))
    except RuleBroken as rule:
        raise refused(rule) from rule
    return enrollment, await session.get(Participant, enrollment.participant_id)


async def get_readiness(*, session: AsyncSession, enrollment_id: uuid.UUID) -> ReadinessChecklist:
    row = await session.get(ReadinessChecklist, enrollment_id)
    if row is None:
        raise NotFound("Daftar periksa kesiapan belum dicatat.")
    return row


async def record_readiness(
    *,
    session: AsyncSession,
    enrollment_id: uuid.UUID,
    data: ReadinessIn,
    recorded_by: str,
    today: date,
) -> ReadinessChecklist:
    """Set a graduate's checklist; ReadinessRecorded is published when anything changed."""
    enrollment, _ = await _graduate(session=session, enrollment_id=enrollment_id)
    row = await session.get(ReadinessChecklist, enrollment_id)
    values = data.model_dump()
    if row is not None and all(getattr(row, k) == v for k, v in values.items()):
        return row
    if row is None:
        row = ReadinessChecklist(enrollment_id=enrollment.id)
        session.add(row)
    row.participant_id = enrollment.participant_id
    for key, value in values.items():
        setattr(row, key, value)
    row.recorded_by = recorded_by
    row.recorded_on = today
    row.updated_at = utcnow()
    add_event(
        session,
        ReadinessRecorded(
            enrollment_id=enrollment.id,
            session_id=enrollment.session_id,
            participant_id=enrollment.participant_id,
            recorded_on=today,
            **values,
        ),
    )
    return row


async def list_enrollments(
    *,
    session: AsyncSession,
    status: EnrollmentStatus | None,
    participant_id: uuid.UUID | None,
    session_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> tuple[Page[Enrollment], dict[uuid.UUID, str]]:
    """Enrolments across sessions (e.g. every graduate, for field officers), with names."""
    query = select(Enrollment)
    if status is not None:
        query = query.where(Enrollment.status == status.value)
    if participant_id is not None:
        query = query.where(Enrollment.participant_id == participant_id)
    if session_id is not None:
        query = query.where(Enrollment.session_id == session_id)
    page = await paginate(
        session,
        query,
        key=Enrollment.created_at,
        tiebreak=Enrollment.id,
        cursor=cursor,
        limit=limit,
        parse_key=parse_utc,
    )
    return page, await participant_names(session=session, enrollments=page.rows)


async def list_follow_ups(*, session: AsyncSession, enrollment_id: uuid.UUID) -> list[FollowUp]:
    if await session.get(Enrollment, enrollment_id) is None:
        raise NotFound("Pendaftaran tidak ditemukan.")
    rows = await session.scalars(
        select(FollowUp)
        .where(FollowUp.enrollment_id == enrollment_id)
        .order_by(FollowUp.checkpoint_months)
    )
    return list(rows.all())


async def record_follow_up(
    *,
    session: AsyncSession,
    enrollment_id: uuid.UUID,
    checkpoint_months: int,
    data: FollowUpIn,
    recorded_by: str,
) -> FollowUp:
    """A field officer's follow-up; sending the same checkpoint again corrects it.

    FollowUpRecorded is published when the record is new or changed.
    """
    enrollment, participant = await _graduate(session=session, enrollment_id=enrollment_id)
    try:
        domain.check_follow_up(
            checkpoint_months=checkpoint_months,
            released_on=participant.released_on if participant else None,
            recorded_on=data.recorded_on,
        )
    except RuleBroken as rule:
        raise refused(rule) from rule
    row = await session.scalar(
        select(FollowUp).where(
            FollowUp.enrollment_id == enrollment.id,
            FollowUp.checkpoint_months == checkpoint_months,
        )
    )
    if (
        row is not None
        and row.situation == data.situation.value
        and row.recorded_on == data.recorded_on
    ):
        return row
    if row is None:
        row = FollowUp(
            id=uuid.uuid4(), enrollment_id=enrollment.id, checkpoint_months=checkpoint_months
        )
        session.add(row)
    row.participant_id = enrollment.participant_id
    row.situation = data.situation.value
    row.recorded_on = data.recorded_on
    row.recorded_by = recorded_by
    row.updated_at = utcnow()
    add_event(
        session,
        FollowUpRecorded(
            enrollment_id=enrollment.id,
            session_id=enrollment.session_id,
            participant_id=enrollment.participant_id,
            checkpoint_months=checkpoint_months,
            situation=FollowUpSituation(data.situation),
            recorded_on=data.recorded_on,
        ),
    )
    return row
