"""Use cases: issue a certificate for a completion, list, verify and revoke certificates."""

from __future__ import annotations

import json
import secrets
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import structlog
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.certification import domain
from bekal.certification.domain import (
    CertificateFacts,
    CertificateStatus,
    Competency,
    RevocationKind,
    VerificationResult,
)
from bekal.certification.models import (
    Certificate,
    CertificateCounter,
    ErasedCertificate,
    ErasedParticipant,
    SigningKey,
    StatusEntry,
)
from bekal.certification.signing import (
    CertificateSigner,
    CredentialError,
    public_key_from_jwk,
    unverified_kid,
    verify_credential,
)
from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import (
    CertificateIssued,
    CertificateReissued,
    CertificateRevocationCause,
    CertificateRevocationKind,
    CertificateRevoked,
    EnrollmentOutcome,
    EnrollmentWithdrawn,
    NotCompletedReason,
    OutcomeCorrected,
    ParticipantCompleted,
)
from bekal.shared.messaging.models import DeadLetter
from bekal.shared.messaging.outbox import add_event
from bekal.shared.pagination import DEFAULT_LIMIT, Page, paginate, parse_utc
from bekal.shared.problems import Conflict, NotFound, RuleViolation

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


# --- the issuer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Issuer:
    """Who signs and where it is published: the current key and the public address."""

    signer: CertificateSigner
    public_base_url: str

    @cached_property
    def did(self) -> str:
        return domain.issuer_did(self.public_base_url)

    def status_list_url(self, status_list: int) -> str:
        return f"{self.public_base_url.rstrip('/')}/status-lists/{status_list}"

    def verification_url(self, code: str) -> str:
        return f"{self.public_base_url.rstrip('/')}/verify/{code}"


def did_document(issuer: Issuer, keys: list[dict[str, Any]]) -> dict[str, Any]:
    """The issuer's did:web document: every key that ever signed, as JsonWebKey methods."""
    did = issuer.did
    methods = [
        {
            "id": f"{did}#{key['kid']}",
            "type": "JsonWebKey",
            "controller": did,
            "publicKeyJwk": {k: key[k] for k in ("kty", "crv", "x")},
        }
        for key in keys
    ]
    ids = [m["id"] for m in methods]
    return {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/jwk/v1"],
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": ids,
    }


# --- issuing --------------------------------------------------------------------------------


async def issue_certificate(
    session: AsyncSession,
    *,
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
                event, event_id=event_id, number=await _next_sequence(session, year)
            )
            await _sign(session, certificate, issuer=issuer, now=now)
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
    session: AsyncSession,
    *,
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
        next_number = await _draw_sequences(session, years)
        places = await _allocate_status_entries(session, len(fresh))
        for (event, event_id), place in zip(fresh.values(), places, strict=True):
            year = domain.number_year(event.end_date)
            certificate = _certificate_for(event, event_id=event_id, number=next_number[year])
            next_number[year] += 1
            _seal(certificate, place, issuer=issuer, now=now)
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
        recipient_name=domain.display_name(event.participant_name),
        hours=event.hours,
        start_date=event.start_date,
        end_date=event.end_date,
        verification_code=domain.new_verification_code(),
        status=CertificateStatus.VALID.value,
        source_event_id=event_id,
    )


async def _sign(
    session: AsyncSession, certificate: Certificate, *, issuer: Issuer, now: datetime
) -> None:
    """Give ``certificate`` its status list entry and its signed OpenBadgeCredential."""
    _seal(certificate, await _allocate_status_entry(session), issuer=issuer, now=now)


def _seal(
    certificate: Certificate, place: tuple[int, int], *, issuer: Issuer, now: datetime
) -> None:
    """Sign ``certificate`` as an OpenBadgeCredential pointing at its status list ``place``."""
    status_list, index = place
    certificate.status_list, certificate.status_list_index = status_list, index
    certificate.issued_at = now
    certificate.issued_on = domain.issue_date(now)
    units = [Competency(**u) for u in json.loads(certificate.competency_units or "[]")]
    credential = domain.open_badge_credential(
        certificate_id=certificate.id,
        number=certificate.number,
        issuer_id=issuer.did,
        recipient_name=certificate.recipient_name,
        salt=domain.new_salt(),
        program_id=certificate.program_id,
        program_code=certificate.program_code,
        program_title=certificate.program_title,
        sector=certificate.sector or "",
        competency_units=units,
        hours=certificate.hours,
        start_date=certificate.start_date,
        end_date=certificate.end_date,
        issued_at=now,
        partner=certificate.partner,
        status=domain.status_entry(list_url=issuer.status_list_url(status_list), index=index),
        verification_url=issuer.verification_url(certificate.verification_code),
    )
    custody_terms = domain.course_custody_terms(
        program_code=certificate.program_code,
        program_title=certificate.program_title,
        sector=certificate.sector or "",
        partner=certificate.partner,
        competency_units=units,
    )
    if custody_terms:
        # Issued anyway (the person earned it), but someone must look at the program's wording.
        log.warning(
            "certificate_text_mentions_custody",
            number=certificate.number,
            terms=custody_terms,
            program_code=certificate.program_code,
        )
    certificate.credential_jws = issuer.signer.sign_vc(credential, issuer_id=issuer.did)
    certificate.signing_kid = issuer.signer.kid


async def _allocate_status_entry(session: AsyncSession) -> tuple[int, int]:
    """A random free place in the open status list (a new list once it is half full)."""
    (place,) = await _allocate_status_entries(session, 1)
    return place


async def _allocate_status_entries(session: AsyncSession, count: int) -> list[tuple[int, int]]:
    """``count`` random free places, taken in the open status list until it is half full, then
    in the next one; in the order drawn, so that the order of issue says nothing of the index.

    A statement reads the open list, one checks each round of random candidates, one takes them
    all. A concurrent issuer taking one of them first fails the insert: the savepoint undoes it
    and the places are drawn again.
    """
    for _ in range(8):
        head = (
            await session.execute(
                select(StatusEntry.status_list, func.count())
                .where(
                    StatusEntry.status_list
                    == select(func.max(StatusEntry.status_list)).scalar_subquery()
                )
                .group_by(StatusEntry.status_list)
            )
        ).first()
        current, used = (head[0], head[1]) if head is not None else (1, 0)
        places: list[tuple[int, int]] = []
        while len(places) < count:
            if used >= domain.STATUS_LIST_FILL_LIMIT:
                current, used = current + 1, 0
            wanted = min(count - len(places), domain.STATUS_LIST_FILL_LIMIT - used)
            places += [(current, i) for i in await _free_indexes(session, current, wanted)]
            used += wanted
        try:
            async with session.begin_nested():
                await session.execute(
                    insert(StatusEntry),
                    [
                        {"status_list": status_list, "list_index": index, "revoked": False}
                        for status_list, index in places
                    ],
                )
        except IntegrityError:
            continue  # taken by a concurrent issuer a moment ago
        return places
    raise RuntimeError("no free status list places found")  # pragma: no cover


async def _free_indexes(session: AsyncSession, status_list: int, count: int) -> list[int]:
    """``count`` distinct random indexes not yet taken in ``status_list``, in the order drawn."""
    chosen: list[int] = []
    seen: set[int] = set()
    for _ in range(64):
        candidates: list[int] = []
        while len(chosen) + len(candidates) < count:
            index = secrets.randbelow(domain.STATUS_LIST_SIZE)
            if index not in seen:
                seen.add(index)
                candidates.append(index)
        taken = set(
            await session.scalars(
                select(StatusEntry.list_index).where(
                    StatusEntry.status_list == status_list,
                    StatusEntry.list_index.in_(candidates),
                )
            )
        )
        chosen += [i for i in candidates if i not in taken]
        if len(chosen) == count:
            return chosen
    raise RuntimeError(f"no free index found in status list {status_list}")  # pragma: no cover


async def _by_enrollment(session: AsyncSession, enrollment_id: uuid.UUID) -> Certificate | None:
    """The certificate issued from the enrollment's completion (corrections are later revisions)."""
    return await session.scalar(
        select(Certificate).where(
            Certificate.enrollment_id == enrollment_id, Certificate.revision == 1
        )
    )


async def _next_sequence(session: AsyncSession, year: int) -> int:
    """Draw the year's next number."""
    return (await _draw_sequences(session, {year: 1}))[year]


async def _draw_sequences(session: AsyncSession, counts: Mapping[int, int]) -> dict[int, int]:
    """Draw ``counts[year]`` consecutive numbers of each year; return the first of each.

    The UPDATE locks the counter row until commit (PostgreSQL); on SQLite the whole transaction
    already holds the write lock. Years are taken in ascending order, so that two issuers
    never wait for each other crosswise.
    """
    found = set(
        await session.scalars(
            select(CertificateCounter.year).where(CertificateCounter.year.in_(list(counts)))
        )
    )
    for year in sorted(set(counts) - found):
        try:
            async with session.begin_nested():
                session.add(CertificateCounter(year=year, last_number=0))
        except IntegrityError:
            pass  # another transaction opened the year first; its row is the one to increment
    first: dict[int, int] = {}
    for year in sorted(counts):
        drawn = await session.scalar(
            update(CertificateCounter)
            .where(CertificateCounter.year == year)
            .values(last_number=CertificateCounter.last_number + counts[year])
            .returning(CertificateCounter.last_number)
            .execution_options(synchronize_session=False)
        )
        if drawn is None:  # pragma: no cover - the row was created just above
            raise RuntimeError(f"no certificate counter for {year}")
        first[year] = int(drawn) - counts[year] + 1
    return first


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
    facts: CertificateFacts | None = None
    certificate: Certificate | None = None
    replaced_by_number: str | None = None
    erased: bool = False
    number: str | None = None
    revoked_on: Any = None


async def verify(session: AsyncSession, *, code: str, name: str | None = None) -> Verification:
    """Find by verification code, or by number together with the holder's name.

    A number alone answers "unknown": numbers are sequential, and a name behind each one
    would let anyone list who was trained. The stored signature is checked every time.
    """
    code = code.strip()
    if not code or len(code) > MAX_LOOKUP_LENGTH:
        return Verification(VerificationResult.UNKNOWN)
    by_number = domain.is_certificate_number(code)
    if by_number and not (name and name.strip()):
        return Verification(VerificationResult.UNKNOWN)
    column = Certificate.number if by_number else Certificate.verification_code
    certificate = await session.scalar(select(Certificate).where(column == code))
    if certificate is None:
        return Verification(VerificationResult.UNKNOWN)
    facts = await _verified_facts(session, certificate)
    # The row's name is the credential's (checked just now); the one typed from the paper may
    # differ from it in case, spacing, accents and apostrophes, as people type names.
    if (
        facts is not None
        and by_number
        and not domain.typed_name_matches(certificate.recipient_name, name or "")
    ):
        return Verification(VerificationResult.UNKNOWN)
    return await _verification(session, certificate, facts)


async def verify_credential_document(session: AsyncSession, *, credential: str) -> Verification:
    """Verify a credential the holder presents (the JWS), even after their data was erased.

    Valid when it verifies with a published key and is exactly the credential we issued under
    its number (kept whole, or kept as a hash after an erasure).
    """
    credential = credential.strip()
    try:
        payload = await _verified_payload(session, credential)
        facts = domain.credential_facts(payload)
    except (CredentialError, KeyError, TypeError, ValueError) as exc:
        log.info("presented_credential_invalid", error=str(exc))
        return Verification(VerificationResult.UNKNOWN)
    certificate = await session.scalar(
        select(Certificate).where(Certificate.number == facts.number)
    )
    if certificate is not None:
        if certificate.credential_jws != credential:
            return Verification(VerificationResult.UNKNOWN)
        return await _verification(session, certificate, facts)
    erased = await session.get(ErasedCertificate, facts.number)
    if erased is None or erased.content_hash != domain.content_hash(credential):
        return Verification(VerificationResult.UNKNOWN)
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
    if result is VerificationResult.UNKNOWN:
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


async def _verified_payload(session: AsyncSession, credential: str) -> dict[str, Any]:
    kid = unverified_kid(credential)
    key_row = await session.get(SigningKey, kid) if kid else None
    if key_row is None:
        raise CredentialError(f"no published key {kid!r}")
    return verify_credential(credential, public_key_from_jwk(json.loads(key_row.public_jwk)))


async def _verified_facts(
    session: AsyncSession, certificate: Certificate
) -> CertificateFacts | None:
    """The facts of the row's credential, or None when it does not verify or is not the row's."""
    try:
        payload = await _verified_payload(session, certificate.credential_jws)
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


# --- revocation and correction ----------------------------------------------------------------


async def revoke_certificate(
    session: AsyncSession,
    *,
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
    certificate = await get_certificate(session, certificate_id=certificate_id, for_update=True)
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
    session: AsyncSession,
    *,
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
    old = await get_certificate(session, certificate_id=certificate_id, for_update=True)
    _must_be_valid(old)
    name = domain.display_name(recipient_name)
    if name == old.recipient_name:
        raise RuleViolation(
            "Nama yang dikoreksi sama dengan nama pada sertifikat.",
            slug="correction-changes-nothing",
            errors=[{"field": "recipient_name", "message": "nama tidak berubah"}],
        )
    new = await _new_revision(session, old, recipient_name=name, issuer=issuer, now=now)
    await revoke_certificate(
        session,
        certificate_id=old.id,
        reason=f"Dikoreksi menjadi {new.number}: {reason}",
        revoked_by=reissued_by,
        now=now,
        kind=RevocationKind.SUPERSEDED,
        replaced_by=new,
    )
    _publish_reissued(session, old=old, new=new)
    log.info("certificate_reissued", old=old.number, new=new.number)
    return new


async def _new_revision(
    session: AsyncSession,
    old: Certificate,
    *,
    recipient_name: str,
    issuer: Issuer,
    now: datetime,
) -> Certificate:
    """The next revision of an enrolment's certificate: same facts, a new number, signed."""
    year = domain.number_year(old.end_date)
    new = Certificate(
        id=uuid.uuid4(),
        number=domain.certificate_number(year, await _next_sequence(session, year)),
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
    await _sign(session, new, issuer=issuer, now=now)
    session.add(new)
    await session.flush()  # a concurrent revision of the same certificate fails here (409)
    return new


def _publish_reissued(session: AsyncSession, *, old: Certificate, new: Certificate) -> None:
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


# --- reacting to training's corrections -------------------------------------------------------

# Who revoked or re-issued when training's facts (not certification staff) decided it.
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
    session: AsyncSession,
    *,
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
                session,
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
    new = await _new_revision(
        session, latest, recipient_name=latest.recipient_name, issuer=issuer, now=now
    )
    latest.replaced_by_id = new.id
    _publish_reissued(session, old=latest, new=new)
    log.info("certificate_issued_again", old=latest.number, new=new.number)
    return [new]


async def apply_enrollment_merged_away(
    session: AsyncSession, *, event: EnrollmentWithdrawn, now: datetime | None = None
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
            session,
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


# --- the status list ----------------------------------------------------------------------------


async def status_list_credential(
    session: AsyncSession, *, status_list: int, issuer: Issuer, now: datetime | None = None
) -> str:
    """The signed BitstringStatusListCredential of one list (vc+jwt), as of now."""
    if status_list != 1:
        in_use = await session.scalar(
            select(StatusEntry.list_index).where(StatusEntry.status_list == status_list).limit(1)
        )
        if in_use is None:
            raise NotFound(f"Daftar status {status_list} tidak ada")
    revoked = await session.scalars(
        select(StatusEntry.list_index).where(
            StatusEntry.status_list == status_list, StatusEntry.revoked.is_(True)
        )
    )
    credential = domain.status_list_credential(
        list_url=issuer.status_list_url(status_list),
        issuer_id=issuer.did,
        encoded_list=domain.encode_status_list(revoked.all()),
        now=now or utcnow(),
    )
    return issuer.signer.sign_vc(credential, issuer_id=issuer.did)


# --- erasure ----------------------------------------------------------------------------------


async def erase_participant(
    session: AsyncSession,
    *,
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
    if final and await session.get(ErasedParticipant, participant_id) is None:
        session.add(ErasedParticipant(participant_id=participant_id, erased_on=erased_on))
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
    # A completion that could not be handled waits in the dead letters with the name in it.
    await session.execute(
        delete(DeadLetter).where(DeadLetter.value.contains(str(participant_id), autoescape=True))
    )
    log.info("participant_certificates_erased", count=len(certificates))
    return [c.number for c in certificates]


async def merge_participants(
    session: AsyncSession, *, merged_id: uuid.UUID, surviving_id: uuid.UUID
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
