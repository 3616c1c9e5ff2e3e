"""The training service's application: routers, consumed registry events, the app factory."""

from __future__ import annotations

from fastapi import FastAPI

from bekal.shared.service import ServiceSpec
from bekal.shared.service import create_app as create_service_app
from bekal.shared.settings import Settings
from bekal.training import web
from bekal.training.api import routers
from bekal.training.handlers import subscriptions
from bekal.training.settings import TrainingSettings

spec = ServiceSpec[TrainingSettings](
    name="training",
    package="bekal.training",
    title="Bekal: pelatihan (training)",
    description=(
        "Programs, sessions, enrolment, attendance, assessment and completion of the industry "
        "side's courses for inmates near release. Keeps its own replica of the registry facts it "
        "needs (facilities, consenting inmates), fed by events."
    ),
    routers=routers,
    pages=web.routers,
    subscriptions=subscriptions,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(spec, TrainingSettings.of(settings))
