"""Staff API: list, read and revoke certificates."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from bekal.certification import services
from bekal.certification.deps import CertificateReader, CertificationAdmin, SessionDep, SettingsDep
from bekal.certification.schemas import CertificatePublic, CertificateRevoke, CertificatesPublic
from bekal.shared.pagination import DEFAULT_LIMIT, Cursor, Limit

router = APIRouter(prefix="/api/v1/certificates", tags=["certificates"])


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
    page = await services.list_certificates(
        session, participant_id=participant_id, session_id=session_id, limit=limit, cursor=cursor
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
    certificate = await services.get_certificate(session, certificate_id=certificate_id)
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
    certificate = await services.revoke_certificate(
        session, certificate_id=certificate_id, reason=body.reason, revoked_by=principal.subject
    )
    await session.commit()
    return CertificatePublic.of(certificate, public_base_url=settings.public_base_url)
