"""Revocation by staff, and re-issue under a corrected name (a new revision, the old revoked)."""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.certification import domain
from bekal.certification.domain import CertificateStatus, RevocationKind
from bekal.certification.models import Certificate, StatusEntry
from bekal.certification.services.common import next_sequence, sign
from bekal.certification.services.keys import Issuer
from bekal.certification.services.reading import get_certificate
from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import (
    CertificateReissued,
    CertificateRevocationCause,
    CertificateRevocationKind,
    CertificateRevoked,
)
from bekal.shared.messaging.outbox import add_event
from bekal.shared.problems import Conflict, RuleViolation

log = structlog.get_logger(__name__)


async def revoke_certificate(
    *,
    session: AsyncSession,
    certificate_id: uuid.UUID,
    reason: str,
    revoked_by: str,
    now: datetime | None = None,
    kind: RevocationKind = RevocationKind.REVOKED,
    replaced_by: Certificate | None = None,
    cause: CertificateRevocationCause | None = None,
) -> Certificate:
    """Revoke for good: verification says so at once, and the status list bit is set.

    The credential itself is kept. Publishes CertificateRevoked (the reason stays here).
    """
    certificate = await get_certificate(
        session=session, certificate_id=certificate_id, for_update=True
    )
    _must_be_valid(certificate)
    certificate.status = CertificateStatus.REVOKED.value
    certificate.revoked_on = domain.issue_date(now or utcnow())
    certificate.revocation_reason = reason
    certificate.revocation_kind = kind.value
    certificate.revoked_by = revoked_by
    if replaced_by is not None:
        certificate.replaced_by_id = replaced_by.id
    if certificate.status_list is not None and certificate.status_list_index is not None:
        await session.execute(
            update(StatusEntry)
            .where(
                StatusEntry.status_list == certificate.status_list,
                StatusEntry.list_index == certificate.status_list_index,
            )
            .values(revoked=True)
        )
    add_event(
        session,
        CertificateRevoked(
            certificate_id=certificate.id,
            number=certificate.number,
            enrollment_id=certificate.enrollment_id,
            revoked_on=certificate.revoked_on,
            kind=CertificateRevocationKind(kind.value),
            replaced_by_certificate_id=replaced_by.id if replaced_by else None,
            cause=cause,
        ),
    )
    log.info(
        "certificate_revoked",
        certificate_id=str(certificate.id),
        number=certificate.number,
        kind=kind.value,
    )
    return certificate


def _must_be_valid(certificate: Certificate) -> None:
    if certificate.status == CertificateStatus.REVOKED:
        raise Conflict(
            f"Sertifikat {certificate.number} sudah dicabut pada {certificate.revoked_on}.",
            slug="certificate-already-revoked",
            errors=[{"field": "status", "message": "sertifikat sudah dicabut"}],
        )


async def reissue_certificate(
    *,
    session: AsyncSession,
    certificate_id: uuid.UUID,
    recipient_name: str,
    reason: str,
    reissued_by: str,
    issuer: Issuer,
    now: datetime | None = None,
) -> Certificate:
    """Correct a name: a new certificate under a new number, the old one revoked, both linked.

    Publishes CertificateRevoked (superseded) for the old one and CertificateReissued.
    """
    now = now or utcnow()
    old = await get_certificate(session=session, certificate_id=certificate_id, for_update=True)
    _must_be_valid(old)
    name = domain.display_name(recipient_name)
    if name == old.recipient_name:
        raise RuleViolation(
            "Nama yang dikoreksi sama dengan nama pada sertifikat.",
            slug="correction-changes-nothing",
            errors=[{"field": "recipient_name", "message": "nama tidak berubah"}],
        )
    new = await new_revision(session=session, old=old, recipient_name=name, issuer=issuer, now=now)
    await revoke_certificate(
        session=session,
        certificate_id=old.id,
        reason=f"Dikoreksi menjadi {new.number}: {reason}",
        revoked_by=reissued_by,
        now=now,
        kind=RevocationKind.SUPERSEDED,
        replaced_by=new,
    )
    publish_reissued(session=session, old=old, new=new)
    log.info("certificate_reissued", old=old.number, new=new.number)
    return new


async def new_revision(
    *,
    session: AsyncSession,
    old: Certificate,
    recipient_name: str,
    issuer: Issuer,
    now: datetime,
) -> Certificate:
    """The next revision of an enrolment's certificate: same facts, a new number, signed."""
    year = domain.number_year(old.end_date)
    new = Certificate(
        id=uuid.uuid4(),
        number=domain.certificate_number(year, await next_sequence(session=session, year=year)),
        enrollment_id=old.enrollment_id,
        revision=old.revision + 1,
        replaces_id=old.id,
        participant_id=old.participant_id,
        session_id=old.session_id,
        program_id=old.program_id,
        program_code=old.program_code,
        program_title=old.program_title,
        sector=old.sector,
        partner=old.partner,
        competency_units=old.competency_units,
        recipient_name=recipient_name,
        hours=old.hours,
        start_date=old.start_date,
        end_date=old.end_date,
        verification_code=domain.new_verification_code(),
        status=CertificateStatus.VALID.value,
        source_event_id=old.source_event_id,
    )
    await sign(session=session, certificate=new, issuer=issuer, now=now)
    session.add(new)
    await session.flush()  # a concurrent revision of the same certificate fails here (409)
    return new


def publish_reissued(*, session: AsyncSession, old: Certificate, new: Certificate) -> None:
    add_event(
        session,
        CertificateReissued(
            certificate_id=new.id,
            number=new.number,
            replaces_certificate_id=old.id,
            replaces_number=old.number,
            participant_id=new.participant_id,
            session_id=new.session_id,
            enrollment_id=new.enrollment_id,
            program_id=new.program_id,
            issued_on=new.issued_on,
        ),
    )
