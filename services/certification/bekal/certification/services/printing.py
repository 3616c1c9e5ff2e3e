"""Printing: one certificate's PDF, or one PDF of all of a session's valid certificates."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.certification import pdf
from bekal.certification.domain import CertificateStatus
from bekal.certification.models import Certificate
from bekal.certification.services.keys import Issuer
from bekal.certification.services.reading import get_certificate, session_certificates
from bekal.certification.settings import CertificationSettings
from bekal.shared.problems import Conflict, NotFound

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PrintedFile:
    content: bytes
    filename: str
    pages: int


def printed(c: Certificate, *, verification_url: str) -> pdf.PrintedCertificate:
    return pdf.PrintedCertificate(
        number=c.number,
        recipient_name=c.recipient_name,
        program_title=c.program_title,
        competency_units=[(u["code"], u["title"]) for u in json.loads(c.competency_units or "[]")],
        hours=c.hours,
        start_date=c.start_date,
        end_date=c.end_date,
        issued_on=c.issued_on,
        partner=c.partner,
        verification_url=verification_url,
    )


def paper(settings: CertificationSettings) -> pdf.Paper:
    """The printed certificates' place, signatory and emblem, from settings (the emblem read
    and checked once, at start-up: a missing or wrong file stops the service there)."""
    emblem = settings.certificate_emblem_file
    return pdf.Paper(
        place=settings.certificate_place.strip(),
        signatory=pdf.Signatory(
            name=settings.certificate_signatory_name.strip(),
            position=settings.certificate_signatory_position.strip(),
            nip=settings.certificate_signatory_nip.strip(),
        ),
        emblem=pdf.emblem_image(emblem) if emblem is not None else None,
    )


def _unprintable(exc: pdf.UnprintableText, what: str) -> Conflict:
    # Printing it anyway would change the name, which then fails verification by name.
    # The code points stay out of the log: they are letters of a person's name.
    log.error("certificate_pdf_unprintable", what=what, letters=len(exc.code_points))
    return Conflict(
        f"{what} tidak dapat dicetak: teksnya memuat huruf yang tidak ada pada huruf cetak "
        f"sertifikat ({', '.join(exc.code_points)}).",
        slug="certificate-unprintable",
    )


async def certificate_pdf(
    *, session: AsyncSession, certificate_id: uuid.UUID, issuer: Issuer
) -> PrintedFile:
    """One valid certificate as an A4 PDF; 409 for a revoked one (a printed copy of it would be
    shown as if it were valid) or one whose text no font can print."""
    c = await get_certificate(session=session, certificate_id=certificate_id)
    if c.status == CertificateStatus.REVOKED:
        raise Conflict(
            f"Sertifikat {c.number} sudah dicabut dan tidak dapat dicetak.",
            slug="certificate-revoked",
            errors=[{"field": "status", "message": "sertifikat sudah dicabut"}],
            replaced_by_id=str(c.replaced_by_id) if c.replaced_by_id else None,
        )
    try:
        document = pdf.render(
            printed(c, verification_url=issuer.verification_url(c.verification_code)),
            issuer.paper,
        )
    except pdf.UnprintableText as exc:
        raise _unprintable(exc, f"Sertifikat {c.number}") from exc
    return PrintedFile(
        content=document, filename="sertifikat-" + c.number.replace("/", "-") + ".pdf", pages=1
    )


async def session_pdf(
    *, session: AsyncSession, session_id: uuid.UUID, issuer: Issuer
) -> PrintedFile:
    """Every valid certificate of a session in one PDF, a page each, by name: what the
    certification officer prints for the hand-over. Revoked ones are left out. 404 when the
    session has no valid certificate."""
    certificates = await session_certificates(
        session=session, session_id=session_id, valid_only=True
    )
    if not certificates:
        raise NotFound(f"Sesi {session_id} tidak memiliki sertifikat yang berlaku.")
    first = certificates[0]
    title = f"Sertifikat {first.program_title}, {first.start_date.isoformat()}"
    try:
        document = pdf.render_many(
            [
                printed(c, verification_url=issuer.verification_url(c.verification_code))
                for c in certificates
            ],
            title=title,
            paper=issuer.paper,
        )
    except pdf.UnprintableText as exc:
        raise _unprintable(exc, "Sertifikat sesi ini") from exc
    filename = f"sertifikat-{first.program_code}-{first.start_date.isoformat()}.pdf"
    return PrintedFile(content=document, filename=_safe_filename(filename), pages=len(certificates))


def _safe_filename(name: str) -> str:
    return "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "-_." else "-" for ch in name)
