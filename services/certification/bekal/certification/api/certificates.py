"""Staff API: list, read, print (one, or a session's at once), revoke and correct
certificates; erase a person's."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response

from bekal.certification.deps import (
    CertificateReader,
    CertificationAdmin,
    IssuerDep,
    SessionDep,
    SettingsDep,
)
from bekal.certification.domain import CertificateStatus
from bekal.certification.schemas import (
    CertificatePublic,
    CertificateReissue,
    CertificateRevoke,
    CertificatesPublic,
    ErasurePublic,
)
from bekal.certification.services import erasure, printing, reading, revocation
from bekal.shared.idempotency import commit
from bekal.shared.pagination import DEFAULT_LIMIT, Cursor, Limit

router = APIRouter(prefix="/api/v1/certificates", tags=["certificates"])
participants = APIRouter(prefix="/api/v1/participants", tags=["erasure"])
sessions = APIRouter(prefix="/api/v1/sessions", tags=["certificates"])


@router.get("", response_model=CertificatesPublic, summary="Certificates, newest first")
async def list_certificates(
    session: SessionDep,
    settings: SettingsDep,
    _: CertificateReader,
    participant_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    q: Annotated[
        str | None, Query(max_length=100, description="A part of the number or the name")
    ] = None,
    program: Annotated[
        str | None, Query(max_length=100, description="A part of the program's code or title")
    ] = None,
    issued_from: Annotated[date | None, Query(description="Issued on or after")] = None,
    issued_to: Annotated[date | None, Query(description="Issued on or before")] = None,
    status: CertificateStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> CertificatesPublic:
    page = await reading.list_certificates(
        session=session,
        participant_id=participant_id,
        session_id=session_id,
        q=q or None,
        program=program or None,
        issued_from=issued_from,
        issued_to=issued_to,
        status=status,
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
    printed = await printing.certificate_pdf(
        session=session, certificate_id=certificate_id, issuer=issuer
    )
    return pdf_response(printed)


@sessions.get(
    "/{session_id}/certificates/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
    summary="Every valid certificate of a session in one PDF, a page each, to print at once",
)
async def session_certificates_pdf(
    session_id: uuid.UUID, session: SessionDep, issuer: IssuerDep, _: CertificateReader
) -> Response:
    printed = await printing.session_pdf(session=session, session_id=session_id, issuer=issuer)
    return pdf_response(printed)


def pdf_response(printed: printing.PrintedFile) -> Response:
    return Response(
        printed.content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{printed.filename}"',
            "Cache-Control": "no-store",
        },
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
