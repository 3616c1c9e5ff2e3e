"""The reporting service's application: projections fed by every topic, indicators over HTTP."""

from __future__ import annotations

from fastapi import FastAPI

from bekal.reporting import web
from bekal.reporting.api import routers
from bekal.reporting.generations import Projections
from bekal.reporting.handlers import subscriptions
from bekal.reporting.services import people
from bekal.reporting.settings import ReportingSettings, reporting_settings
from bekal.shared.service import ServiceSpec
from bekal.shared.service import create_app as create_service_app
from bekal.shared.settings import Settings


async def open_projections(app: FastAPI) -> None:
    """The live generation, before any event: the shared consumer applies events to it."""
    projections = Projections(app, app.state.settings)
    app.state.projections = projections
    await projections.open()


async def close_projections(app: FastAPI) -> None:
    """A rebuild under way stops first; the consumer leaves the generation it writes to before
    that generation's database is closed."""
    projections: Projections = app.state.projections
    await projections.stop()
    await app.state.messaging.stop_consuming()
    await projections.dispose()


spec = ServiceSpec[ReportingSettings](
    name="reporting",
    package="bekal.reporting",
    title="Bekal — Pelaporan (reporting)",
    description=(
        "Projections of facilities, programs, sessions, enrolments and certificates, built only "
        "from events, and the indicators both ministries read. Participants appear only by "
        "pseudonymous id."
    ),
    routers=routers,
    pages=web.routers,
    subscriptions=subscriptions,
    on_startup=(open_projections,),
    on_shutdown=(close_projections,),
    resources=lambda app, settings: people.handler_resources(settings),
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(spec, reporting_settings(settings))
