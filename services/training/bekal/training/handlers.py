"""Registry events training consumes: facilities and inmates into the replica, withdrawals."""

from __future__ import annotations

import structlog

from bekal.shared.events.catalogue import (
    FacilityRegistered,
    FacilityUpdated,
    InmateReleased,
    InmateShared,
    InmateTransferred,
)
from bekal.shared.messaging.consumer import HandlerContext, Subscriptions
from bekal.training import services

log = structlog.get_logger(__name__)

subscriptions = Subscriptions("training")


@subscriptions.on(FacilityRegistered, FacilityUpdated)
async def on_facility(event: FacilityRegistered | FacilityUpdated, ctx: HandlerContext) -> None:
    await services.apply_facility(session=ctx.session, event=event, as_of=ctx.meta.time)


@subscriptions.on(InmateShared)
async def on_inmate_shared(event: InmateShared, ctx: HandlerContext) -> None:
    await services.apply_inmate_shared(session=ctx.session, event=event, as_of=ctx.meta.time)


@subscriptions.on(InmateReleased)
async def on_inmate_released(event: InmateReleased, ctx: HandlerContext) -> None:
    withdrawn = await services.apply_inmate_released(
        session=ctx.session, event=event, as_of=ctx.meta.time
    )
    if withdrawn:
        log.info("enrollments_withdrawn", reason="released", count=len(withdrawn))


@subscriptions.on(InmateTransferred)
async def on_inmate_transferred(event: InmateTransferred, ctx: HandlerContext) -> None:
    withdrawn = await services.apply_inmate_transferred(
        session=ctx.session, event=event, as_of=ctx.meta.time
    )
    if withdrawn:
        log.info("enrollments_withdrawn", reason="transferred", count=len(withdrawn))
