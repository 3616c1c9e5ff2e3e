"""What issuing and re-issuing share: drawing certificate numbers and signing a certificate."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.certification import domain
from bekal.certification.domain import Competency
from bekal.certification.models import Certificate, CertificateCounter
from bekal.certification.services.keys import Issuer
from bekal.certification.services.status_list import allocate_status_entry

log = structlog.get_logger(__name__)


async def sign(
    *, session: AsyncSession, certificate: Certificate, issuer: Issuer, now: datetime
) -> None:
    """Give ``certificate`` its status list entry and its signed OpenBadgeCredential."""
    seal(certificate, await allocate_status_entry(session=session), issuer=issuer, now=now)


def seal(
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
        context_url=issuer.context_url,
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
    certificate.credential_jws = issuer.signer.sign_open_badge(credential, issuer_id=issuer.did)
    certificate.signing_kid = issuer.signer.kid


async def next_sequence(*, session: AsyncSession, year: int) -> int:
    """Draw the year's next number."""
    return (await draw_sequences(session=session, counts={year: 1}))[year]


async def draw_sequences(*, session: AsyncSession, counts: Mapping[int, int]) -> dict[int, int]:
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
