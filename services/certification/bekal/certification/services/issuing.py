"""Issuing: one certificate per completed enrollment, one at a time or a batch at once."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.certification import domain
from bekal.certification.domain import CertificateStatus
from bekal.certification.models import Certificate, ErasedParticipant
from bekal.certification.services.common import draw_sequences, next_sequence, seal, sign
from bekal.certification.services.keys import Issuer
from bekal.certification.services.status_list import allocate_status_entries
from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import CertificateIssued, ParticipantCompleted
from bekal.shared.messaging.outbox import add_event

log = structlog.get_logger(__name__)


async def issue_certificate(
    *,
    session: AsyncSession,
    event: ParticipantCompleted,
    event_id: str,
    issuer: Issuer,
    now: datetime | None = None,
) -> tuple[Certificate | None, bool]:
    """The enrollment's certificate, issued now unless it exists; ``(certificate, issued_now)``.

    None when the participant was erased before the completion arrived: nothing is issued.

    Runs inside the caller's transaction and does not commit. A second delivery of the same
    completion (same event id or not, before or while this one runs) ends with the one
    certificate, one number drawn and one CertificateIssued.
    """
    existing = await _by_enrollment(session, event.enrollment_id)
    if existing is not None:
        return existing, False
    if await session.get(ErasedParticipant, event.participant_id) is not None:
        log.warning("completion_of_erased_participant_ignored")
        return None, False
    now = now or utcnow()
    try:
        # The savepoint spans the number, the status entry and the row: if the row loses the
        # race on the unique constraint, the number goes back too and the sequence stays whole.
        async with session.begin_nested():
            year = domain.number_year(event.end_date)
            certificate = _certificate_for(
                event, event_id=event_id, number=await next_sequence(session=session, year=year)
            )
            await sign(session=session, certificate=certificate, issuer=issuer, now=now)
            session.add(certificate)
            await session.flush()
    except IntegrityError:
        existing = await _by_enrollment(session, event.enrollment_id)
        if existing is None:
            raise
        log.info(
            "certificate_already_issued",
            enrollment_id=str(event.enrollment_id),
            number=existing.number,
        )
        return existing, False
    add_event(session, issued_event(certificate))
    _log_issued(certificate)
    return certificate, True


async def issue_certificates(
    *,
    session: AsyncSession,
    completions: Sequence[tuple[ParticipantCompleted, str]],
    issuer: Issuer,
    now: datetime | None = None,
) -> list[tuple[Certificate | None, bool]]:
    """``issue_certificate`` for each ``(completion, event id)`` in order, with a few statements
    for all of them instead of a dozen for each; one ``(certificate, issued_now)`` per completion.

    The state it leaves is the one ``issue_certificate`` leaves applied to each in turn: an
    enrollment that has its certificate (from before, or from a completion earlier in the
    list) gets nothing new, an erased participant gets nothing, and the others get numbers
    in their order, each a random free status list place and a signed credential.

    It does not stage the CertificateIssued events: the caller publishes ``issued_event`` of
    each certificate issued now, in the trace of its completion. Runs inside the caller's
    transaction and does not commit. If a concurrent issuer took the same enrollment or status
    list place meanwhile, the flush fails on a unique constraint: the caller rolls back and
    issues the completions one at a time with ``issue_certificate``, which settles such races.
    """
    if not completions:
        return []
    enrollment_ids = {event.enrollment_id for event, _ in completions}
    certified = {
        c.enrollment_id: c
        for c in await session.scalars(
            select(Certificate).where(
                Certificate.enrollment_id.in_(enrollment_ids), Certificate.revision == 1
            )
        )
    }
    erased = set(
        await session.scalars(
            select(ErasedParticipant.participant_id).where(
                ErasedParticipant.participant_id.in_(
                    {event.participant_id for event, _ in completions}
                )
            )
        )
    )
    fresh: dict[uuid.UUID, tuple[ParticipantCompleted, str]] = {}
    for event, event_id in completions:
        if event.enrollment_id in certified or event.enrollment_id in fresh:
            continue
        if event.participant_id in erased:
            log.warning("completion_of_erased_participant_ignored", event_id=event_id)
            continue
        fresh[event.enrollment_id] = (event, event_id)
    if fresh:
        now = now or utcnow()
        years = Counter(domain.number_year(event.end_date) for event, _ in fresh.values())
        next_number = await draw_sequences(session=session, counts=years)
        places = await allocate_status_entries(session=session, count=len(fresh))
        for (event, event_id), place in zip(fresh.values(), places, strict=True):
            year = domain.number_year(event.end_date)
            certificate = _certificate_for(event, event_id=event_id, number=next_number[year])
            next_number[year] += 1
            seal(certificate, place, issuer=issuer, now=now)
            session.add(certificate)
            certified[event.enrollment_id] = certificate
        await session.flush()
        for enrollment_id in fresh:
            _log_issued(certified[enrollment_id])
    results: list[tuple[Certificate | None, bool]] = []
    unannounced = set(fresh)  # the first completion of each enrollment is the one that issued
    for event, _ in completions:
        results.append((certified.get(event.enrollment_id), event.enrollment_id in unannounced))
        unannounced.discard(event.enrollment_id)
    return results


def issued_event(certificate: Certificate) -> CertificateIssued:
    return CertificateIssued(
        certificate_id=certificate.id,
        number=certificate.number,
        participant_id=certificate.participant_id,
        session_id=certificate.session_id,
        enrollment_id=certificate.enrollment_id,
        program_id=certificate.program_id,
        issued_on=certificate.issued_on,
    )


def _log_issued(certificate: Certificate) -> None:
    log.info(
        "certificate_issued",
        certificate_id=str(certificate.id),
        number=certificate.number,
        enrollment_id=str(certificate.enrollment_id),
        kid=certificate.signing_kid,
    )


def _certificate_for(event: ParticipantCompleted, *, event_id: str, number: int) -> Certificate:
    """The unsigned revision 1 of a completion's certificate, numbered ``number`` in its year."""
    return Certificate(
        id=uuid.uuid4(),
        number=domain.certificate_number(domain.number_year(event.end_date), number),
        enrollment_id=event.enrollment_id,
        revision=1,
        participant_id=event.participant_id,
        session_id=event.session_id,
        program_id=event.program_id,
        program_code=event.program_code,
        program_title=event.program_title,
        sector=event.sector,
        partner=event.partner,
        competency_units=json.dumps(
            [{"code": u.code, "title": u.title} for u in event.competency_units]
        ),
        # None once the person is erased (their key destroyed): no name, as erasure leaves it.
        recipient_name=domain.display_name(event.participant_name or ""),
        hours=event.hours,
        start_date=event.start_date,
        end_date=event.end_date,
        verification_code=domain.new_verification_code(),
        status=CertificateStatus.VALID.value,
        source_event_id=event_id,
    )


async def _by_enrollment(session: AsyncSession, enrollment_id: uuid.UUID) -> Certificate | None:
    """The certificate issued from the enrollment's completion (corrections are later revisions)."""
    return await session.scalar(
        select(Certificate).where(
            Certificate.enrollment_id == enrollment_id, Certificate.revision == 1
        )
    )
