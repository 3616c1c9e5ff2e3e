"""The registry service: its spec for the shared application factory, and the app."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bekal.registry import web
from bekal.registry.api import routers
from bekal.registry.api.imports import mark_interrupted_jobs, stop_running_jobs
from bekal.registry.domain import MovementRefused, RuleBroken
from bekal.registry.settings import RegistrySettings
from bekal.shared.problems import Conflict, RuleViolation, problem_response
from bekal.shared.service import ServiceSpec
from bekal.shared.service import create_app as create_service_app
from bekal.shared.settings import Settings


async def _mark_interrupted_jobs(app: FastAPI) -> None:
    # An import job runs inside the process that accepted it: one left running died with it.
    await mark_interrupted_jobs(app.state.db)


async def _rule_broken(request: Request, exc: Exception) -> JSONResponse:
    """Domain rules become problem+json naming the field: 409 for state conflicts, 422 otherwise."""
    if not isinstance(exc, RuleBroken):  # registered for RuleBroken only; for the type checker
        raise exc
    problem_class = Conflict if isinstance(exc, MovementRefused) else RuleViolation
    problem = problem_class(
        exc.message, slug=exc.slug, errors=[{"field": exc.field, "message": exc.message}]
    )
    return problem_response(problem, request)


spec = ServiceSpec[RegistrySettings](
    name="registry",
    package="bekal.registry",
    title="Bekal registry",
    description=(
        "Facilities and inmates, owned by the corrections administration. Only inmates who "
        "consented are shared with the industry side, by a pseudonymous id; the NIK never leaves."
    ),
    routers=routers,
    pages=web.routers,
    subscriptions=None,  # the registry is a source of truth: it consumes nothing
    on_startup=[_mark_interrupted_jobs],
    # This process's import jobs stop (and say so) while the database they write to is open.
    on_shutdown=[stop_running_jobs],
    exception_handlers={RuleBroken: _rule_broken},
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(spec, RegistrySettings.of(settings))
