"""Dependencies of the HTTP layer as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bekal.certification.ratelimit import SlidingWindowLimiter
from bekal.certification.services.keys import Issuer
from bekal.certification.settings import CertificationSettings
from bekal.certification.signing import CertificateSigner
from bekal.shared.auth import Ministry, Principal, Role, require
from bekal.shared.deps import SessionDep as SessionDep  # re-exported for the routers


# Dependencies are coroutines: FastAPI runs a plain function in a worker thread, a hand-off
# that cost more than the function on every request (a tenth of a verification's samples).
async def get_settings(request: Request) -> CertificationSettings:
    settings: CertificationSettings = request.app.state.settings
    return settings


async def get_signer(request: Request) -> CertificateSigner:
    signer: CertificateSigner = request.app.state.certificate_signer
    return signer


async def get_issuer(request: Request) -> Issuer:
    issuer: Issuer = request.app.state.certificate_issuer
    return issuer


async def get_verify_limiter(request: Request) -> SlidingWindowLimiter:
    limiter: SlidingWindowLimiter = request.app.state.verify_limiter
    return limiter


SettingsDep = Annotated[CertificationSettings, Depends(get_settings)]
SignerDep = Annotated[CertificateSigner, Depends(get_signer)]
IssuerDep = Annotated[Issuer, Depends(get_issuer)]
VerifyLimiterDep = Annotated[SlidingWindowLimiter, Depends(get_verify_limiter)]

# Certificates name people: only the industry side's certification and training staff read them.
# The staff pages admit by the same rules (web/).
STAFF_MINISTRY = Ministry.INDUSTRY
READER_ROLES: tuple[str, ...] = (
    Role.CERTIFICATION_ADMIN,
    Role.TRAINING_ADMIN,
    Role.TRAINING_OFFICER,
)
ADMIN_ROLES: tuple[str, ...] = (Role.CERTIFICATION_ADMIN,)
CertificateReader = Annotated[Principal, require(ministry=STAFF_MINISTRY, roles=READER_ROLES)]
CertificationAdmin = Annotated[Principal, require(ministry=STAFF_MINISTRY, roles=ADMIN_ROLES)]
