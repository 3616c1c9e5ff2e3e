"""The reporting service's application: projections fed by every topic, indicators over HTTP."""

from __future__ import annotations

from fastapi import FastAPI

from bekal.reporting.api import routers
from bekal.reporting.handlers import subscriptions
from bekal.shared.service import ServiceSpec
from bekal.shared.service import create_app as create_service_app
from bekal.shared.settings import Settings

spec = ServiceSpec(
    name="reporting",
    package="bekal.reporting",
    title="Bekal — Pelaporan (reporting)",
    description=(
        "Projections of facilities, programs, sessions, enrolments and certificates, built only "
        "from events, and the indicators both ministries read. Participants appear only by "
        "pseudonymous id."
    ),
    routers=routers,
    subscriptions=subscriptions,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(spec, settings or Settings(service_name=spec.name))
