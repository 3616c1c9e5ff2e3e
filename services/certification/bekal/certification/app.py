"""The certification service's application: staff API, public verification, completion consumer."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from bekal.certification.api import certificates, public
from bekal.certification.handlers import ISSUER, subscriptions
from bekal.certification.ratelimit import SlidingWindowLimiter
from bekal.certification.services import keys
from bekal.certification.settings import certification_settings
from bekal.certification.signing import CertificateSigner
from bekal.shared.service import ServiceSpec
from bekal.shared.service import create_app as create_service_app
from bekal.shared.settings import Settings


def _resources(app: FastAPI, settings: Settings) -> dict[str, Any]:
    return {ISSUER: app.state.certificate_issuer}


async def _on_ready(app: FastAPI) -> None:
    async with app.state.db.session() as session:
        await keys.register_signing_key(session, signer=app.state.certificate_signer)
        await session.commit()


spec = ServiceSpec(
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
    routers=[certificates.router, certificates.participants, public.router],
    subscriptions=subscriptions,
    on_ready=_on_ready,
    resources=_resources,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    config = certification_settings(settings)
    app = create_service_app(spec, config)
    app.state.certificate_signer = CertificateSigner.from_key_file(
        config.certificate_signing_key_file
    )
    app.state.certificate_issuer = keys.Issuer(
        signer=app.state.certificate_signer, public_base_url=config.public_base_url
    )
    app.state.verify_limiter = SlidingWindowLimiter(config.verify_rate_limit_per_minute)
    return app
