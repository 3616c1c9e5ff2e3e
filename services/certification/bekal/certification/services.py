"""Use cases: issue a certificate for a completion, list, verify and revoke certificates."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.certification import domain
from bekal.certification.domain import CertificateStatus, Competency, VerificationResult
from bekal.certification.models import Certificate, CertificateCounter, SigningKey
from bekal.certification.signing import (
    CertificateSigner,
    CredentialError,
    public_key_from_jwk,
    unverified_kid,
    verify_credential,
)
from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import CertificateIssued, ParticipantCompleted
from bekal.shared.messaging.outbox import add_event
from bekal.shared.pagination import DEFAULT_LIMIT, Page, paginate, parse_utc
from bekal.shared.problems import Conflict, NotFound

log = structlog.get_logger(__name__)

# Longer than any code or number we hand out: answered "unknown" without touching the database.
MAX_LOOKUP_LENGTH = 64


# --- signing keys ---------------------------------------------------------------------------


async def register_signing_key(session: AsyncSession, *, signer: CertificateSigner) -> bool:
    """Record the current key's public half once; return whether it was new.

    Replicas start together: the loser of the insert race finds the winner's row.
    """
    if await session.get(SigningKey, signer.kid) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(
                SigningKey(
                    kid=signer.kid,
                    algorithm=signer.jwk["alg"],
                    public_jwk=json.dumps(signer.jwk, sort_keys=True),
                    first_used_at=utcnow(),
                )
            )
    except IntegrityError:
        return False
    log.info("signing_key_registered", kid=signer.kid)
    return True


async def published_keys(
    session: AsyncSession, *, signer: CertificateSigner
) -> list[dict[str, Any]]:
    """Every key that ever signed, newest first; the current key even before it is recorded."""
    rows = (
        await session.scalars(select(SigningKey).order_by(SigningKey.first_used_at.desc()))
    ).all()
    keys = [json.loads(row.public_jwk) for row in rows]
    if all(k.get("kid") != signer.kid for k in keys):
        keys.insert(0, dict(signer.jwk))
    return keys


# --- issuing --------------------------------------------------------------------------------


async def issue_certificate(
    session: AsyncSession,
    *,
    event: ParticipantCompleted,
    event_id: str,
    signer: CertificateSigner,
    now: datetime | None = None,
) -> tuple[Certificate, bool]:
    """The enrollment's certificate, issued now unless it exists; ``(certificate, issued_now)``.

    Runs inside the caller's transaction and does not commit. A second delivery of the same
    completion (same event id or not, before or while this one runs) ends with the one
    certificate, one number drawn and one CertificateIssued.
    """
    existing = await _by_enrollment(session, event.enrollment_id)
    if existing is not None:
        return existing, False
    now = now or utcnow()
    try:
        # The savepoint spans the number and the row: if the row loses the race on the
        # enrollment's unique constraint, the number goes back too and the sequence stays whole.
        async with session.begin_nested():
            sequence = await _next_sequence(session, domain.number_year(event.end_date))
            certificate = _new_certificate(
                event, event_id=event_id, sequence=sequence, signer=signer, now=now
            )
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
    add_event(
        session,
        CertificateIssued(
            certificate_id=certificate.id,
            number=certificate.number,
            participant_id=certificate.participant_id,
            session_id=certificate.session_id,
            enrollment_id=certificate.enrollment_id,
            program_id=certificate.program_id,
            issued_on=certificate.issued_on,
        ),
    )
    log.info(
        "certificate_issued",
        certificate_id=str(certificate.id),
        number=certificate.number,
        enrollment_id=str(certificate.enrollment_id),
        kid=certificate.signing_kid,
    )
    return certificate, True


def _new_certificate(
    event: ParticipantCompleted,
    *,
    event_id: str,
    sequence: int,
    signer: CertificateSigner,
    now: datetime,
) -> Certificate:
    certificate_id = uuid.uuid4()
    number = domain.certificate_number(domain.number_year(event.end_date), sequence)
    issued_on = domain.issue_date(now)
    claims = domain.credential_claims(
        certificate_id=certificate_id,
        number=number,
        recipient_name=event.participant_name,
        program_code=event.program_code,
        program_title=event.program_title,
        sector=event.sector,
        competency_units=[Competency(code=u.code, title=u.title) for u in event.competency_units],
        hours=event.hours,
        start_date=event.start_date,
        end_date=event.end_date,
        issued_on=issued_on,
        partner=event.partner,
    )
    custody_terms = domain.custody_terms_in(claims)
    if custody_terms:
        # Issued anyway (the person earned it), but someone must look at the program's wording.
        log.warning(
            "certificate_text_mentions_custody",
            number=number,
            terms=custody_terms,
            program_code=event.program_code,
        )
    return Certificate(
        id=certificate_id,
        number=number,
        enrollment_id=event.enrollment_id,
        participant_id=event.participant_id,
        session_id=event.session_id,
        program_id=event.program_id,
        program_code=event.program_code,
        program_title=event.program_title,
        recipient_name=claims["recipient_name"],
        hours=event.hours,
        start_date=event.start_date,
        end_date=event.end_date,
        issued_on=issued_on,
        issued_at=now,
        verification_code=domain.new_verification_code(),
        credential_jws=signer.sign(claims),
        signing_kid=signer.kid,
        status=CertificateStatus.VALID.value,
        source_event_id=event_id,
    )


async def _by_enrollment(session: AsyncSession, enrollment_id: uuid.UUID) -> Certificate | None:
    return await session.scalar(
        select(Certificate).where(Certificate.enrollment_id == enrollment_id)
    )


async def _next_sequence(session: AsyncSession, year: int) -> int:
    """Draw the year's next number. The UPDATE locks the counter row until commit (PostgreSQL);
    on SQLite the whole transaction already holds the write lock."""
    found = await session.scalar(
        select(CertificateCounter.year).where(CertificateCounter.year == year)
    )
    if found is None:
        try:
            async with session.begin_nested():
                session.add(CertificateCounter(year=year, last_number=0))
        except IntegrityError:
            pass  # another transaction opened the year first; its row is the one to increment
    drawn = await session.scalar(
        update(CertificateCounter)
        .where(CertificateCounter.year == year)
        .values(last_number=CertificateCounter.last_number + 1)
        .returning(CertificateCounter.last_number)
        .execution_options(synchronize_session=False)
    )
    if drawn is None:  # pragma: no cover - the row was created just above
        raise RuntimeError(f"no certificate counter for {year}")
    return int(drawn)


# --- reading --------------------------------------------------------------------------------


async def get_certificate(
    session: AsyncSession, *, certificate_id: uuid.UUID, for_update: bool = False
) -> Certificate:
    certificate = await session.get(Certificate, certificate_id, with_for_update=for_update)
    if certificate is None:
        raise NotFound(f"Sertifikat {certificate_id} tidak ditemukan")
    return certificate


async def list_certificates(
    session: AsyncSession,
    *,
    participant_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[Certificate]:
    """Newest first; ``count`` is the number matching the filters, over all pages."""
    filters = []
    if participant_id is not None:
        filters.append(Certificate.participant_id == participant_id)
    if session_id is not None:
        filters.append(Certificate.session_id == session_id)
    return await paginate(
        session,
        select(Certificate).where(*filters),
        key=Certificate.issued_at,
        tiebreak=Certificate.id,
        cursor=cursor,
        limit=limit,
        parse_key=parse_utc,
        descending=True,
    )


# --- public verification --------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """What the public is told, taken from the verified credential, never from the row alone."""

    result: VerificationResult
    claims: dict[str, Any] | None = None
    certificate: Certificate | None = None


async def verify(session: AsyncSession, *, code: str) -> Verification:
    """Find by verification code (or by number) and re-check the stored signature."""
    code = code.strip()
    if not code or len(code) > MAX_LOOKUP_LENGTH:
        return Verification(VerificationResult.UNKNOWN)
    by_number = domain.is_certificate_number(code)
    column = Certificate.number if by_number else Certificate.verification_code
    certificate = await session.scalar(select(Certificate).where(column == code))
    if certificate is None:
        return Verification(VerificationResult.UNKNOWN)
    claims = await _verified_claims(session, certificate)
    result = domain.verification_result(
        exists=True,
        signature_valid=claims is not None,
        revoked=certificate.status == CertificateStatus.REVOKED,
    )
    if result is VerificationResult.UNKNOWN:
        return Verification(result)
    return Verification(result, claims=claims, certificate=certificate)


async def _verified_claims(
    session: AsyncSession, certificate: Certificate
) -> dict[str, Any] | None:
    try:
        kid = unverified_kid(certificate.credential_jws)
        key_row = await session.get(SigningKey, kid) if kid else None
        if key_row is None:
            raise CredentialError(f"no published key {kid!r}")
        public_key = public_key_from_jwk(json.loads(key_row.public_jwk))
        claims = verify_credential(certificate.credential_jws, public_key)
        # A genuine credential pasted onto another row is still a forgery of that row.
        if claims.get("jti") != str(certificate.id) or claims.get("number") != certificate.number:
            raise CredentialError("credential belongs to another certificate")
    except CredentialError as exc:
        log.error(
            "certificate_credential_invalid", certificate_id=str(certificate.id), error=str(exc)
        )
        return None
    return {k: v for k, v in claims.items() if k in domain.CLAIM_NAMES}


# --- revocation -----------------------------------------------------------------------------


async def revoke_certificate(
    session: AsyncSession,
    *,
    certificate_id: uuid.UUID,
    reason: str,
    revoked_by: str,
    now: datetime | None = None,
) -> Certificate:
    """Revoke for good; verifiers see "revoked" from then on. The credential itself is kept."""
    certificate = await get_certificate(session, certificate_id=certificate_id, for_update=True)
    if certificate.status == CertificateStatus.REVOKED:
        raise Conflict(
            f"Sertifikat {certificate.number} sudah dicabut pada {certificate.revoked_on}.",
            slug="certificate-already-revoked",
            errors=[{"field": "status", "message": "sertifikat sudah dicabut"}],
        )
    certificate.status = CertificateStatus.REVOKED.value
    certificate.revoked_on = domain.issue_date(now or utcnow())
    certificate.revocation_reason = reason
    certificate.revoked_by = revoked_by
    log.info("certificate_revoked", certificate_id=str(certificate.id), number=certificate.number)
    return certificate
