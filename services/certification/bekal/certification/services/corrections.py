"""Reacting to training's corrections: an outcome corrected, an enrollment merged away."""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.certification.domain import CertificateStatus, RevocationKind
from bekal.certification.models import Certificate
from bekal.certification.services.keys import Issuer
from bekal.certification.services.revocation import (
    new_revision,
    publish_reissued,
    revoke_certificate,
)
from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import (
    CertificateRevocationCause,
    EnrollmentOutcome,
    EnrollmentWithdrawn,
    NotCompletedReason,
    OutcomeCorrected,
)

log = structlog.get_logger(__name__)


TRAINING_CORRECTION_ACTOR = "training-correction"

_NOT_COMPLETED_WORDS = {
    NotCompletedReason.ATTENDANCE_BELOW_MINIMUM: "kehadiran di bawah batas minimum",
    NotCompletedReason.COMPETENCIES_NOT_MET: "kompetensi belum terpenuhi",
}


async def _certificates_of(session: AsyncSession, enrollment_id: uuid.UUID) -> list[Certificate]:
    """Every certificate of one enrolment, oldest revision first, held until commit."""
    rows = await session.scalars(
        select(Certificate)
        .where(Certificate.enrollment_id == enrollment_id)
        .order_by(Certificate.revision)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def apply_outcome_corrected(
    *,
    session: AsyncSession,
    event: OutcomeCorrected,
    issuer: Issuer,
    now: datetime | None = None,
) -> list[Certificate]:
    """Training corrected an outcome after completion; returns the certificates it changed.

    Pass turned into fail: the enrolment's valid certificate is revoked (kind ``revoked``,
    cause ``outcome_corrected``, the correction's reason kept here in Bahasa Indonesia).
    Fail turned into pass: if the enrolment never had a certificate, the ParticipantCompleted
    that training publishes right after this event issues the first one (nothing to do here).
    If its certificate had been revoked by an earlier outcome correction, a new revision is
    issued (new number, CertificateReissued linking the revoked one). A certificate revoked by
    certification staff stays revoked: a correction of the outcome does not overrule them.
    A second delivery finds the certificate already in the state asked for and does nothing.
    """
    now = now or utcnow()
    certificates = await _certificates_of(session, event.enrollment_id)
    valid = [c for c in certificates if c.status == CertificateStatus.VALID.value]
    if event.outcome is EnrollmentOutcome.NOT_COMPLETED:
        why = (
            f" ({_NOT_COMPLETED_WORDS[event.not_completed_reason]})"
            if event.not_completed_reason is not None
            else ""
        )
        return [
            await revoke_certificate(
                session=session,
                certificate_id=c.id,
                reason=f"Hasil pelatihan dikoreksi menjadi tidak lulus{why}: {event.reason}",
                revoked_by=TRAINING_CORRECTION_ACTOR,
                now=now,
                cause=CertificateRevocationCause.OUTCOME_CORRECTED,
            )
            for c in valid
        ]
    if valid or not certificates:
        return []
    latest = certificates[-1]
    if (
        latest.revoked_by != TRAINING_CORRECTION_ACTOR
        or latest.revocation_kind != RevocationKind.REVOKED.value
        or latest.replaced_by_id is not None
    ):
        return []
    new = await new_revision(
        session=session, old=latest, recipient_name=latest.recipient_name, issuer=issuer, now=now
    )
    latest.replaced_by_id = new.id
    publish_reissued(session=session, old=latest, new=new)
    log.info("certificate_issued_again", old=latest.number, new=new.number)
    return [new]


async def apply_enrollment_merged_away(
    *, session: AsyncSession, event: EnrollmentWithdrawn, now: datetime | None = None
) -> list[Certificate]:
    """The registry merged two records of one person who were both in one session; training
    kept one enrolment (``merged_into_enrollment_id``). A valid certificate of the other is
    revoked (cause ``enrollment_merged``): the person holds one certificate per course, the
    one of the enrolment kept. Other withdrawals (a mid-course release) never had one."""
    if event.merged_into_enrollment_id is None:
        return []
    certificates = await _certificates_of(session, event.enrollment_id)
    return [
        await revoke_certificate(
            session=session,
            certificate_id=c.id,
            reason=(
                "Data warga binaan digabung: orang yang sama tercatat dua kali pada sesi ini; "
                f"yang berlaku adalah pendaftaran {event.merged_into_enrollment_id}."
            ),
            revoked_by=TRAINING_CORRECTION_ACTOR,
            now=now,
            cause=CertificateRevocationCause.ENROLLMENT_MERGED,
        )
        for c in certificates
        if c.status == CertificateStatus.VALID.value
    ]
