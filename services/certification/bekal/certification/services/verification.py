"""Public verification: by code, by number and name, or by the credential the holder presents."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.certification import domain
from bekal.certification.domain import CertificateFacts, CertificateStatus, VerificationResult
from bekal.certification.models import Certificate, ErasedCertificate, SigningKey
from bekal.certification.signing import (
    OPEN_BADGE_TYP,
    CredentialError,
    public_key_from_jwk,
    unverified_header,
    unverified_kid,
    verify_credential,
)
from bekal.shared.db import utcnow

log = structlog.get_logger(__name__)

# Longer than any code or number we hand out: answered "unknown" without touching the database.
MAX_LOOKUP_LENGTH = 64


@dataclass(frozen=True)
class Verification:
    """What the public is told, taken from the verified credential, never from the row alone."""

    result: VerificationResult
    facts: CertificateFacts | None = None
    certificate: Certificate | None = None
    replaced_by_number: str | None = None
    erased: bool = False
    number: str | None = None
    revoked_on: Any = None


async def verify(*, session: AsyncSession, code: str, name: str | None = None) -> Verification:
    """Find by verification code, or by number together with the holder's name.

    A number alone answers "unknown": numbers are sequential, and a name behind each one
    would let anyone list who was trained. The stored credential's signature is checked every
    time (a credential and key checked lately answer from memory: the same text with the same
    key verifies the same way; an altered row is other text, and is checked afresh).
    """
    code = code.strip()
    if not code or len(code) > MAX_LOOKUP_LENGTH:
        return Verification(VerificationResult.UNKNOWN)
    by_number = domain.is_certificate_number(code)
    if by_number and not (name and name.strip()):
        return Verification(VerificationResult.UNKNOWN)
    if by_number and not await _holder_named(session, code, name or ""):
        return Verification(VerificationResult.UNKNOWN)
    column = Certificate.number if by_number else Certificate.verification_code
    certificate = await session.scalar(select(Certificate).where(column == code))
    if certificate is None:
        return Verification(VerificationResult.UNKNOWN)
    # The row's name is then checked against the credential's hash with its signature.
    facts = await _verified_facts(session, certificate)
    return await _verification(session, certificate, facts)


# Compared with the typed name when a number was never issued, so that the answer takes the
# same work as for a number issued to someone else; whatever it matches, the answer is unknown.
STAND_IN_HOLDER = "Nama Pemegang Sertifikat Yang Tidak Ada"


async def _holder_named(session: AsyncSession, number: str, typed: str) -> bool:
    """Whether ``number`` was issued to the person ``typed`` names, as typed from the paper.

    A name that is not the holder's answers as a number never issued, and in the same time, so
    that neither the answer nor its delay tells a stranger whether a number exists: both read
    the holder's name alone with one statement, and both compare the typed name once (in
    constant time, typed_name_matches), with the stand-in when there is no such number.
    """
    holder = await session.scalar(
        select(Certificate.recipient_name).where(Certificate.number == number)
    )
    matches = domain.typed_name_matches(holder if holder is not None else STAND_IN_HOLDER, typed)
    return holder is not None and matches


async def verify_credential_document(*, session: AsyncSession, credential: str) -> Verification:
    """Verify a credential the holder presents (the JWS), even after their data was erased.

    Valid when it verifies with a published key and is exactly the credential we issued under
    its number (kept whole, or kept as a hash after an erasure). Invalid when it does not
    verify (altered, signed by a key that is not ours, not a credential at all) or is not the
    credential issued under its number; unknown when it verifies but we hold no record of it.
    """
    credential = credential.strip()
    try:
        payload = await verified_payload(session, credential)
        facts = domain.credential_facts(payload)
    except (CredentialError, KeyError, TypeError, ValueError) as exc:
        log.info("presented_credential_invalid", error=str(exc))
        return Verification(VerificationResult.INVALID)
    certificate = await session.scalar(
        select(Certificate).where(Certificate.number == facts.number)
    )
    if certificate is not None:
        if certificate.credential_jws != credential:
            log.info("presented_credential_not_the_issued_one", number=facts.number)
            return Verification(VerificationResult.INVALID)
        return await _verification(session, certificate, facts)
    erased = await session.get(ErasedCertificate, facts.number)
    if erased is None:
        return Verification(VerificationResult.UNKNOWN)
    if erased.content_hash != domain.content_hash(credential):
        log.info("presented_credential_not_the_issued_one", number=facts.number)
        return Verification(VerificationResult.INVALID)
    revoked = erased.status == CertificateStatus.REVOKED
    return Verification(
        VerificationResult.REVOKED if revoked else VerificationResult.VALID,
        facts=facts,
        erased=True,
        number=erased.number,
        revoked_on=erased.revoked_on,
    )


async def _verification(
    session: AsyncSession, certificate: Certificate, facts: CertificateFacts | None
) -> Verification:
    result = domain.verification_result(
        exists=True,
        signature_valid=facts is not None,
        revoked=certificate.status == CertificateStatus.REVOKED,
    )
    if result is VerificationResult.INVALID:
        return Verification(result)
    replaced_by = None
    if certificate.replaced_by_id is not None:
        replaced_by = await session.scalar(
            select(Certificate.number).where(Certificate.id == certificate.replaced_by_id)
        )
    return Verification(
        result,
        facts=facts,
        certificate=certificate,
        replaced_by_number=replaced_by,
        number=certificate.number,
        revoked_on=certificate.revoked_on,
    )


# A credential's signature checked once with a key is checked: the payload and header of the
# credentials verified lately are kept (their claims are checked against the clock each time).
# Checking the signature and reading the header twice on each request was a tenth of a
# verification's samples under py-spy. What fails to verify raises, and is never kept.
VERIFIED_CREDENTIALS = 4096


@lru_cache(maxsize=VERIFIED_CREDENTIALS)
def _signed_payload(credential: str, public_jwk: str) -> dict[str, Any]:
    """The payload of ``credential`` signed with the key ``public_jwk``: read, never changed
    (``verified_payload`` hands out a copy)."""
    return verify_credential(credential, public_key_from_jwk(json.loads(public_jwk)))


_kid = lru_cache(maxsize=VERIFIED_CREDENTIALS)(unverified_kid)
_header = lru_cache(maxsize=VERIFIED_CREDENTIALS)(unverified_header)


async def verified_payload(session: AsyncSession, credential: str) -> dict[str, Any]:
    """The payload of a credential signed by one of our published keys, whose Open Badges
    registered claims agree with it (raises ``CredentialError`` otherwise)."""
    kid = _kid(credential)
    key_row = await session.get(SigningKey, kid) if kid else None
    if key_row is None:
        raise CredentialError(f"no published key {kid!r}")
    payload = dict(_signed_payload(credential, key_row.public_jwk))
    if domain.is_open_badge(payload):
        # Credentials signed since the Open Badges JWT rules were met say so with typ "JWT";
        # earlier ones (typ vc+jwt, iat instead of nbf, no sub) must still agree as far as
        # they go.
        strict = _header(credential).get("typ") == OPEN_BADGE_TYP
        try:
            domain.check_open_badge_claims(payload, now=utcnow(), strict=strict)
        except domain.OpenBadgeClaimError as exc:
            raise CredentialError(f"registered claims: {exc}") from exc
    return payload


async def _verified_facts(
    session: AsyncSession, certificate: Certificate
) -> CertificateFacts | None:
    """The facts of the row's credential, or None when it does not verify or is not the row's."""
    try:
        payload = await verified_payload(session, certificate.credential_jws)
        facts = domain.credential_facts(payload)
        # A genuine credential pasted onto another row is still a forgery of that row.
        expected_id = f"urn:uuid:{certificate.id}" if domain.is_open_badge(payload) else None
        if payload.get("jti") not in (expected_id, str(certificate.id)):
            raise CredentialError("credential belongs to another certificate")
        if facts.number != certificate.number:
            raise CredentialError("credential belongs to another number")
        if not domain.name_matches(facts, certificate.recipient_name):
            raise CredentialError("credential names someone else")
    except (CredentialError, KeyError, TypeError, ValueError) as exc:
        log.error(
            "certificate_credential_invalid", certificate_id=str(certificate.id), error=str(exc)
        )
        return None
    return facts
