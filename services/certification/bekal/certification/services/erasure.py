"""Erasure: forgetting a person's certificates, and merging two records of one person."""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.certification import domain
from bekal.certification.models import Certificate, ErasedCertificate, ErasedParticipant
from bekal.shared.db import checkpoint_after_commit, utcnow
from bekal.shared.idempotency import IdempotencyRecord
from bekal.shared.messaging.models import DeadLetter, OutboxMessage

log = structlog.get_logger(__name__)


async def erase_participant(
    *,
    session: AsyncSession,
    participant_id: uuid.UUID,
    now: datetime | None = None,
    final: bool = True,
) -> list[str]:
    """Forget a person: of each of their certificates keep only its number, a hash of its
    credential and whether it was revoked; return the numbers. Idempotent.

    ``final`` (an erasure, not a consent withdrawal) also remembers the pseudonymous id, so
    that a completion arriving later issues nothing.
    """
    certificates = (
        await session.scalars(
            select(Certificate)
            .where(Certificate.participant_id == participant_id)
            .with_for_update()
        )
    ).all()
    erased_on = domain.issue_date(now or utcnow())
    for certificate in certificates:
        session.add(
            ErasedCertificate(
                number=certificate.number,
                content_hash=domain.content_hash(certificate.credential_jws),
                status=certificate.status,
                revoked_on=certificate.revoked_on,
                erased_on=erased_on,
            )
        )
    if certificates:
        await session.execute(
            delete(Certificate).where(Certificate.participant_id == participant_id)
        )
    # A completion that could not be handled waits in the dead letters with the name in it (or
    # names the person only in its key or headers, if it did not parse).
    await session.execute(delete(DeadLetter).where(DeadLetter.naming(str(participant_id))))
    # Events already sent keep the id beside a session and a date: they are on the topic, so
    # the copies here go (one not sent yet stays until the relay has sent it).
    await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.sent_at.is_not(None),
            OutboxMessage.payload.contains(str(participant_id), autoescape=True),
        )
    )
    await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.body.contains(str(participant_id), autoescape=True)
        )
    )
    checkpoint_after_commit(session)
    # Staged last, so that it reaches the database with the commit: a concurrent erasure of the
    # same person that commits first makes this one's commit fail (a 409 for a request, a retry
    # for the consumer) instead of a statement half-way through it.
    if final and await session.get(ErasedParticipant, participant_id) is None:
        session.add(ErasedParticipant(participant_id=participant_id, erased_on=erased_on))
    log.info("participant_certificates_erased", count=len(certificates))
    return [c.number for c in certificates]


async def merge_participants(
    *, session: AsyncSession, merged_id: uuid.UUID, surviving_id: uuid.UUID
) -> int:
    """Two registry records were one person: their certificates now belong to the survivor."""
    result = await session.execute(
        update(Certificate)
        .where(Certificate.participant_id == merged_id)
        .values(participant_id=surviving_id)
        .execution_options(synchronize_session=False)
    )
    moved = int(getattr(result, "rowcount", 0) or 0)
    log.info("participant_certificates_merged", count=moved)
    return moved
