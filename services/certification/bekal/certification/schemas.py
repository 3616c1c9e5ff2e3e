"""The certification API's request and response bodies."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from bekal.certification.domain import CertificateStatus, VerificationResult
from bekal.certification.models import Certificate


class CertificatePublic(BaseModel):
    id: uuid.UUID
    number: str = Field(examples=["IKMA/2024/000001"])
    participant_id: uuid.UUID
    session_id: uuid.UUID
    enrollment_id: uuid.UUID
    program_id: uuid.UUID
    program_code: str
    recipient_name: str
    program_title: str
    hours: int
    start_date: date
    end_date: date
    issued_on: date
    status: CertificateStatus
    revoked_on: date | None
    verification_code: str
    verification_url: str = Field(description="The public page an employer opens (or scans)")
    credential_jws: str = Field(
        description="The OpenBadgeCredential as VC-JOSE, Open Badges' JWT proof (compact JWS, "
        "typ JWT, EdDSA/Ed25519); keys at /.well-known/jwks.json and /.well-known/did.json; "
        "with an embedded Data Integrity proof at /api/v1/certificates/{id}/credential"
    )
    revision: int = Field(description="1 as issued; 2, 3, ... for corrections")
    replaces_id: uuid.UUID | None = Field(description="The certificate this one corrects")
    replaced_by_id: uuid.UUID | None = Field(description="The certificate that corrects this one")
    pdf_url: str = Field(description="The printable A4 PDF (staff API)")

    @classmethod
    def of(cls, certificate: Certificate, *, public_base_url: str) -> CertificatePublic:
        return cls(
            id=certificate.id,
            number=certificate.number,
            participant_id=certificate.participant_id,
            session_id=certificate.session_id,
            enrollment_id=certificate.enrollment_id,
            program_id=certificate.program_id,
            program_code=certificate.program_code,
            recipient_name=certificate.recipient_name,
            program_title=certificate.program_title,
            hours=certificate.hours,
            start_date=certificate.start_date,
            end_date=certificate.end_date,
            issued_on=certificate.issued_on,
            status=CertificateStatus(certificate.status),
            revoked_on=certificate.revoked_on,
            verification_code=certificate.verification_code,
            verification_url=verification_url(public_base_url, certificate.verification_code),
            credential_jws=certificate.credential_jws,
            revision=certificate.revision,
            replaces_id=certificate.replaces_id,
            replaced_by_id=certificate.replaced_by_id,
            pdf_url=f"/api/v1/certificates/{certificate.id}/pdf",
        )


class CertificatesPublic(BaseModel):
    data: list[CertificatePublic]
    count: int = Field(description="Certificates matching the filters, over all pages")
    next_cursor: str | None


class CertificateRevoke(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    reason: str = Field(min_length=3, max_length=500, description="Why (kept, not published)")


class CertificateReissue(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    recipient_name: str = Field(min_length=2, max_length=300, description="The corrected name")
    reason: str = Field(min_length=3, max_length=500, description="Why (kept, not published)")


class ErasurePublic(BaseModel):
    participant_id: uuid.UUID
    erased_numbers: list[str] = Field(
        description="Certificates of which only the number and a content hash are kept"
    )
    count: int


class CredentialPresented(BaseModel):
    credential: str = Field(
        min_length=20, max_length=20_000, description="The credential (vc+jwt) the holder keeps"
    )


class CompetencyPublic(BaseModel):
    code: str
    title: str


class VerificationPublic(BaseModel):
    """An unknown code answers ``{"result": "unknown"}`` only, a tampered or forged credential
    ``{"result": "invalid"}`` only: unset fields are left out."""

    result: VerificationResult
    number: str | None = None
    recipient_name: str | None = None
    program_code: str | None = None
    program_title: str | None = None
    competency_units: list[CompetencyPublic] | None = None
    hours: int | None = None
    start_date: date | None = None
    end_date: date | None = None
    issued_on: date | None = None
    issuer: str | None = None
    partner: str | None = None
    revoked_on: date | None = None
    replaced_by_number: str | None = Field(
        default=None, description="A revoked certificate's corrected successor"
    )
    holder_data_erased: bool | None = Field(
        default=None, description="The holder's data was erased: only the number is known"
    )


class JSONWebKey(BaseModel):
    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str
    iss: str | None = Field(default=None, description="The issuer (its did:web) the key signs for")


class JSONWebKeySet(BaseModel):
    keys: list[JSONWebKey]


def verification_url(public_base_url: str, code: str) -> str:
    return f"{public_base_url.rstrip('/')}/verify/{code}"
