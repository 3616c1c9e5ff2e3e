"""Staff API: list, read, print, revoke and correct certificates; erase a person's."""

from __future__ import annotations

import json
import uuid

import structlog
from fastapi import APIRouter, Response

from bekal.certification import pdf
from bekal.certification.deps import (
    CertificateReader,
    CertificationAdmin,
    IssuerDep,
    SessionDep,
    SettingsDep,
)
from bekal.certification.domain import CertificateStatus
from bekal.certification.models import Certificate
from bekal.certification.schemas import (
    CertificatePublic,
    CertificateReissue,
    CertificateRevoke,
    CertificatesPublic,
    ErasurePublic,
)
from bekal.certification.services import erasure, reading, revocation
from bekal.shared.idempotency import commit
from bekal.shared.pagination import DEFAULT_LIMIT, Cursor, Limit
from bekal.shared.problems import Conflict

router = APIRouter(prefix="/api/v1/certificates", tags=["certificates"])
participants = APIRouter(prefix="/api/v1/participants", tags=["erasure"])
log = structlog.get_logger(__name__)


@router.get("", response_model=CertificatesPublic, summary="Certificates, newest first")
async def list_certificates(
    session: SessionDep,
    settings: SettingsDep,
    _: CertificateReader,
    participant_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> CertificatesPublic:
    page = await reading.list_certificates(
        session=session,
        participant_id=participant_id,
        session_id=session_id,
        limit=limit,
        cursor=cursor,
    )
    base_url = settings.public_base_url
    return CertificatesPublic(
        data=[CertificatePublic.of(c, public_base_url=base_url) for c in page.rows],
        count=page.count,
        next_cursor=page.next_cursor,
    )


@router.get("/{certificate_id}", response_model=CertificatePublic, summary="One certificate")
async def get_certificate(
    certificate_id: uuid.UUID, session: SessionDep, settings: SettingsDep, _: CertificateReader
) -> CertificatePublic:
    certificate = await reading.get_certificate(session=session, certificate_id=certificate_id)
    return CertificatePublic.of(certificate, public_base_url=settings.public_base_url)


@router.post(
    "/{certificate_id}/revoke",
    response_model=CertificatePublic,
    summary="Revoke a certificate (verifiers see it as revoked from now on)",
)
async def revoke_certificate(
    certificate_id: uuid.UUID,
    body: CertificateRevoke,
    session: SessionDep,
    settings: SettingsDep,
    principal: CertificationAdmin,
) -> CertificatePublic:
    certificate = await revocation.revoke_certificate(
        session=session,
        certificate_id=certificate_id,
        reason=body.reason,
        revoked_by=principal.subject,
    )
    await commit(session)
    return CertificatePublic.of(certificate, public_base_url=settings.public_base_url)


@router.get(
    "/{certificate_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
    summary="The printable certificate (A4 PDF, Bahasa Indonesia, QR code to its verification)",
)
async def certificate_pdf(
    certificate_id: uuid.UUID, session: SessionDep, issuer: IssuerDep, _: CertificateReader
) -> Response:
    c = await reading.get_certificate(session=session, certificate_id=certificate_id)
    if c.status == CertificateStatus.REVOKED:
        # A printed copy of a revoked certificate would be shown as if it were valid.
        raise Conflict(
            f"Sertifikat {c.number} sudah dicabut dan tidak dapat dicetak.",
            slug="certificate-revoked",
            errors=[{"field": "status", "message": "sertifikat sudah dicabut"}],
            replaced_by_id=str(c.replaced_by_id) if c.replaced_by_id else None,
        )
    try:
        document = _printed(c, verification_url=issuer.verification_url(c.verification_code))
    except pdf.UnprintableText as exc:
        # Printing it anyway would change the name, which then fails verification by name.
        # The code points stay out of the log: they are letters of a person's name.
        log.error("certificate_pdf_unprintable", number=c.number, letters=len(exc.code_points))
        raise Conflict(
            f"Sertifikat {c.number} tidak dapat dicetak: teksnya memuat huruf yang tidak ada "
            f"pada huruf cetak sertifikat ({', '.join(exc.code_points)}).",
            slug="certificate-unprintable",
        ) from exc
    filename = "sertifikat-" + c.number.replace("/", "-") + ".pdf"
    return Response(
        document,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _printed(c: Certificate, *, verification_url: str) -> bytes:
    return pdf.render(
        pdf.PrintedCertificate(
            number=c.number,
            recipient_name=c.recipient_name,
            program_title=c.program_title,
            competency_units=[
                (u["code"], u["title"]) for u in json.loads(c.competency_units or "[]")
            ],
            hours=c.hours,
            start_date=c.start_date,
            end_date=c.end_date,
            issued_on=c.issued_on,
            partner=c.partner,
            verification_url=verification_url,
        )
    )


@router.post(
    "/{certificate_id}/reissue",
    response_model=CertificatePublic,
    status_code=201,
    summary="Correct the name: a new certificate under a new number; the old one is revoked",
)
async def reissue_certificate(
    certificate_id: uuid.UUID,
    body: CertificateReissue,
    session: SessionDep,
    issuer: IssuerDep,
    principal: CertificationAdmin,
) -> CertificatePublic:
    certificate = await revocation.reissue_certificate(
        session=session,
        certificate_id=certificate_id,
        recipient_name=body.recipient_name,
        reason=body.reason,
        reissued_by=principal.subject,
        issuer=issuer,
    )
    await commit(session)
    return CertificatePublic.of(certificate, public_base_url=issuer.public_base_url)


@participants.post(
    "/{participant_id}/erasure",
    response_model=ErasurePublic,
    summary="Erase a person's certificate data: only numbers and content hashes are kept",
)
async def erase_participant(
    participant_id: uuid.UUID, session: SessionDep, _: CertificationAdmin
) -> ErasurePublic:
    numbers = await erasure.erase_participant(session=session, participant_id=participant_id)
    await commit(session)
    return ErasurePublic(participant_id=participant_id, erased_numbers=numbers, count=len(numbers))
