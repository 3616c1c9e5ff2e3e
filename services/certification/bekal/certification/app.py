"""The certification service's application: staff API, public verification, completion consumer."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from bekal.certification import web
from bekal.certification.api import routers
from bekal.certification.handlers import ISSUER, subscriptions
from bekal.certification.ratelimit import SlidingWindowLimiter
from bekal.certification.services import keys, printing
from bekal.certification.settings import CertificationSettings
from bekal.certification.signing import CertificateSigner
from bekal.shared.service import ServiceSpec
from bekal.shared.service import create_app as create_service_app
from bekal.shared.settings import Settings


def _state(app: FastAPI, settings: CertificationSettings) -> None:
    app.state.certificate_signer = CertificateSigner.from_key_file(
        settings.certificate_signing_key_file
    )
    app.state.certificate_issuer = keys.Issuer(
        signer=app.state.certificate_signer,
        public_base_url=settings.public_base_url,
        paper=printing.paper(settings),
    )
    app.state.verify_limiter = SlidingWindowLimiter(settings.verify_rate_limit_per_minute)


def _resources(app: FastAPI, settings: CertificationSettings) -> dict[str, Any]:
    return {ISSUER: app.state.certificate_issuer}


async def _register_signing_key(app: FastAPI) -> None:
    async with app.state.db.session() as session:
        await keys.register_signing_key(session=session, signer=app.state.certificate_signer)
        await session.commit()


spec = ServiceSpec[CertificationSettings](
    name="certification",
    package="bekal.certification",
    title="Bekal: Sertifikasi",
    description=(
        "Completion certificates for participants who pass a course: one per enrollment, "
        "numbered IKMA/<year>/<sequence>, each an Open Badges 3.0 credential signed as VC-JOSE "
        "(vc+jwt, EdDSA), printable as a PDF, revocable (Bitstring Status List) and verifiable "
        "by anyone at /verify/{code}. Consumes ParticipantCompleted; publishes "
        "CertificateIssued, CertificateRevoked, CertificateReissued. "
        "A certificate never names the facility where the course was held."
    ),
    routers=routers,
    pages=web.routers,
    subscriptions=subscriptions,
    state=_state,
    resources=_resources,
    on_startup=[_register_signing_key],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(spec, CertificationSettings.of(settings))
