"""The registry service: its spec for the shared application factory, and the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bekal.registry.api import audit_router, facilities_router, imports_router, inmates_router
from bekal.registry.api.imports import mark_interrupted_jobs, stop_running_jobs
from bekal.registry.domain import MovementRefused, RuleBroken
from bekal.shared.problems import Conflict, RuleViolation, problem_response
from bekal.shared.service import ServiceSpec
from bekal.shared.service import create_app as create_service_app
from bekal.shared.settings import Settings


async def _on_ready(app: FastAPI) -> None:
    # An import job runs inside the process that accepted it: one left running died with it.
    await mark_interrupted_jobs(app.state.db)


spec = ServiceSpec(
    name="registry",
    package="bekal.registry",
    title="Bekal registry",
    description=(
        "Facilities and inmates, owned by the corrections administration. Only inmates who "
        "consented are shared with the industry side, by a pseudonymous id; the NIK never leaves."
    ),
    routers=[facilities_router, inmates_router, audit_router, imports_router],
    subscriptions=None,  # the registry is a source of truth: it consumes nothing
    on_ready=_on_ready,
)


async def _rule_broken(request: Request, exc: Exception) -> JSONResponse:
    """Domain rules become problem+json naming the field: 409 for state conflicts, 422 otherwise."""
    if not isinstance(
        exc, RuleBroken
    ):  # registered for RuleBroken only; keeps the type checker honest
        raise exc
    problem_class = Conflict if isinstance(exc, MovementRefused) else RuleViolation
    problem = problem_class(
        exc.message, slug=exc.slug, errors=[{"field": exc.field, "message": exc.message}]
    )
    return problem_response(problem, request)


def create_app(settings: Settings | None = None) -> FastAPI:
    app = create_service_app(spec, settings)
    app.add_exception_handler(RuleBroken, _rule_broken)
    service_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with service_lifespan(app) as state:
            try:
                yield state
            finally:
                # Before the shared shutdown closes the database the jobs write to.
                await stop_running_jobs(app)

    app.router.lifespan_context = lifespan
    return app
