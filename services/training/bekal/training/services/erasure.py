"""Erasure: the person's training rows re-filed under a fresh anonymous id, nothing left that
leads from their participant id to who they were."""

from __future__ import annotations

import uuid
from datetime import date

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.events.catalogue import WithdrawalReason
from bekal.shared.idempotency import IdempotencyRecord
from bekal.shared.messaging.models import DeadLetter, OutboxMessage
from bekal.training.models import (
    Enrollment,
    FollowUp,
    MergedParticipant,
    Participant,
    ParticipantAbsence,
    ParticipantReturn,
    ReadinessChecklist,
)
from bekal.training.services.withdrawals import withdraw_from_open_sessions

log = structlog.get_logger(__name__)

# Where an erased participant id is routed (as a merged-away id is to its survivor): no row is
# ever filed under it, so a late or replayed event about the person finds nobody and changes
# nothing.
ERASED = uuid.UUID(int=0)


async def refile_erased_participant(
    *, session: AsyncSession, participant_id: uuid.UUID, on: date
) -> uuid.UUID:
    """After the name is gone (``replica.anonymise_participant``): the person's enrolments
    (with their attendance, assessments and outcomes, which hang on the enrolment), readiness
    checklists and follow-ups move to a fresh random id, with no link kept to the old one; the
    replica row (sex, birth year, facility, dates) and its temporary absences are deleted; open
    enrolments end (consent withdrawn), published under the new id. Counts stay: every
    enrolment and outcome is still there. Returns the new id.

    Of the participant id only a tombstone remains (``MergedParticipant`` to ``ERASED``).
    Events already sent that name it are deleted from the outbox, as are dead letters and
    remembered Idempotency-Key answers naming it; events not sent yet name the new id.
    """
    anonymous = uuid.uuid4()
    pid = str(participant_id)
    for model in (Enrollment, ReadinessChecklist, FollowUp):
        await session.execute(
            update(model)
            .where(model.participant_id == participant_id)
            .values(participant_id=anonymous)
            .execution_options(synchronize_session="fetch")
        )
    await session.execute(delete(Participant).where(Participant.id == participant_id))
    await session.execute(
        delete(ParticipantAbsence).where(ParticipantAbsence.participant_id == participant_id)
    )
    await session.execute(
        delete(ParticipantReturn).where(ParticipantReturn.participant_id == participant_id)
    )
    if await session.get(MergedParticipant, participant_id) is None:
        session.add(MergedParticipant(id=participant_id, surviving_id=ERASED, merged_on=on))
    withdrawn = await withdraw_from_open_sessions(
        session=session,
        participant_id=anonymous,
        reason=WithdrawalReason.CONSENT_WITHDRAWN,
        on=on,
    )
    await session.flush()
    await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.sent_at.is_not(None),
            OutboxMessage.payload.contains(pid, autoescape=True),
        )
    )
    for message in await session.scalars(
        select(OutboxMessage).where(OutboxMessage.payload.contains(pid, autoescape=True))
    ):
        message.payload = message.payload.replace(pid, str(anonymous))
    await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.body.contains(pid, autoescape=True))
    )
    await session.execute(delete(DeadLetter).where(DeadLetter.naming(pid)))
    log.info("participant_refiled", withdrawn=len(withdrawn))
    return anonymous
