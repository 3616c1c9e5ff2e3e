"""Staff API: list, read, print (one, or a session's at once), revoke and correct
certificates; erase a person's."""

from __future__ import annotations

import json
import uuid
from datetime import date
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

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
from bekal.certification.services import credentials, erasure, printing, reading, revocation
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


class CredentialFormat(StrEnum):
    """The two proof formats of Open Badges 3.0."""

    VC_JWT = "vc-jwt"  # JSON Web Token proof (VC-JOSE-COSE), the one signed at issue
    DATA_INTEGRITY = "data-integrity"  # embedded DataIntegrityProof, eddsa-rdfc-2022


# Media types: VC-JOSE-COSE's for the JWT; VC 2.0's (and the JSON-LD ones clients send) for a
# credential with an embedded proof.
_JWT_MEDIA_TYPE = "application/vc+jwt"
_DI_MEDIA_TYPE = "application/vc"
_DI_ACCEPTED = (_DI_MEDIA_TYPE, "application/vc+ld+json", "application/ld+json")


def _wanted_format(format: CredentialFormat | None, accept: str | None) -> CredentialFormat:
    if format is not None:
        return format
    wanted = [part.split(";")[0].strip().lower() for part in (accept or "").split(",")]
    for media_type in wanted:
        if media_type == _JWT_MEDIA_TYPE:
            return CredentialFormat.VC_JWT
        if media_type in _DI_ACCEPTED:
            return CredentialFormat.DATA_INTEGRITY
    return CredentialFormat.VC_JWT


@router.get(
    "/{certificate_id}/credential",
    response_class=Response,
    responses={
        200: {
            "description": "The OpenBadgeCredential: as a compact JWS (`application/vc+jwt`, "
            "the default) or with an embedded Data Integrity proof, cryptosuite "
            "eddsa-rdfc-2022 (`application/vc`)",
            "content": {
                _JWT_MEDIA_TYPE: {"schema": {"type": "string"}},
                _DI_MEDIA_TYPE: {"schema": {"type": "object"}},
            },
        },
        409: {
            "description": "The stored credential fails its signature check, or was "
            "issued before Open Badges (JWT only)"
        },
    },
    summary="The certificate's credential in either Open Badges 3.0 proof format",
)
async def certificate_credential(
    certificate_id: uuid.UUID,
    session: SessionDep,
    issuer: IssuerDep,
    _: CertificateReader,
    format: Annotated[
        CredentialFormat | None,
        Query(
            description="`vc-jwt` or `data-integrity`; overrides Accept "
            "(`application/vc+jwt`, or `application/vc` for the embedded proof)"
        ),
    ] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    headers = {"Cache-Control": "no-store", "Vary": "Accept"}
    if _wanted_format(format, accept) is CredentialFormat.VC_JWT:
        token = await credentials.jwt_credential(session=session, certificate_id=certificate_id)
        return Response(token, media_type=_JWT_MEDIA_TYPE, headers=headers)
    document = await credentials.data_integrity_credential(
        session=session, certificate_id=certificate_id, issuer=issuer
    )
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return Response(body.encode("utf-8"), media_type=_DI_MEDIA_TYPE, headers=headers)


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
