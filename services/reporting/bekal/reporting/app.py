"""The reporting service's application: projections fed by every topic, indicators over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bekal.reporting.api import routers
from bekal.reporting.generations import Projections
from bekal.reporting.handlers import subscriptions
from bekal.reporting.settings import ReportingSettings, reporting_settings
from bekal.shared.service import ServiceSpec
from bekal.shared.service import create_app as create_service_app
from bekal.shared.settings import Settings

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
    subscriptions=subscriptions,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = reporting_settings(settings)
    # The live consumer writes into whichever generation is live, which a rebuild changes while
    # the service runs: reporting starts it itself (generations.Projections), not the factory.
    app = create_service_app(spec, settings.model_copy(update={"consumer_auto_start": False}))
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            projections = Projections(app, settings, consume=settings.consumer_auto_start)
            app.state.projections = projections
            await projections.open()
            try:
                yield
            finally:
                await projections.stop()
        await projections.dispose()

    app.router.lifespan_context = lifespan
    return app
