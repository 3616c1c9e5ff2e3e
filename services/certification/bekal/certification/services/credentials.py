"""A certificate's credential in the two proof formats Open Badges 3.0 allows: the stored JWT
(VC-JOSE-COSE) and, made on request, the same credential with an embedded Data Integrity
proof (eddsa-rdfc-2022)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from bekal.certification import domain, proofs
from bekal.certification.services.keys import Issuer
from bekal.certification.services.reading import get_certificate
from bekal.certification.services.verification import verified_payload
from bekal.certification.signing import CredentialError
from bekal.shared.db import utcnow
from bekal.shared.problems import Conflict

log = structlog.get_logger(__name__)


async def jwt_credential(*, session: AsyncSession, certificate_id: uuid.UUID) -> str:
    """The credential as signed at issue: a compact JWS (``application/vc+jwt``)."""
    certificate = await get_certificate(session=session, certificate_id=certificate_id)
    return certificate.credential_jws


async def data_integrity_credential(
    *,
    session: AsyncSession,
    certificate_id: uuid.UUID,
    issuer: Issuer,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The certificate's OpenBadgeCredential with an embedded eddsa-rdfc-2022 proof.

    Made from the stored JWT's payload once its signature checks out (a row altered in the
    database is refused, never signed anew), without the JWT claims that restate it, and
    signed with the current key (its Multikey is in the did:web document).
    """
    certificate = await get_certificate(session=session, certificate_id=certificate_id)
    try:
        payload = await verified_payload(session, certificate.credential_jws)
    except CredentialError as exc:
        log.error(
            "certificate_credential_invalid", certificate_id=str(certificate.id), error=str(exc)
        )
        raise Conflict(
            f"Kredensial sertifikat {certificate.number} tidak lolos pemeriksaan tanda tangan.",
            slug="certificate-credential-invalid",
        ) from exc
    if not domain.is_open_badge(payload):
        raise Conflict(
            f"Sertifikat {certificate.number} diterbitkan sebelum Open Badges; kredensialnya "
            "hanya tersedia sebagai JWT.",
            slug="credential-format-unavailable",
        )
    credential = domain.unsecured_credential(payload)
    # Credentials issued before our context existed name certificateNumber, competencyUnits
    # and hours without defining them: the context is added, so that the proof covers them.
    contexts = list(credential["@context"])
    if not any(str(c).endswith(domain.BEKAL_CONTEXT_PATH) for c in contexts):
        credential["@context"] = [*contexts, issuer.context_url]
    (context_url,) = [c for c in credential["@context"] if c.endswith(domain.BEKAL_CONTEXT_PATH)]
    loader = proofs.document_loader(bekal_context_url=context_url)
    return await run_in_threadpool(
        proofs.add_proof,
        credential,
        signer=issuer.signer,
        verification_method=issuer.multikey_method,
        created=now or utcnow(),
        loader=loader,
    )
