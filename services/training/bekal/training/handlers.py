"""Registry events training consumes: the replica, withdrawals, merges and anonymisation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.db import checkpoint_after_commit, utcnow
from bekal.shared.events.catalogue import (
    FacilityRegistered,
    FacilityUpdated,
    InmateConsentWithdrawn,
    InmateDied,
    InmateErased,
    InmateReleased,
    InmateReturned,
    InmateShared,
    InmatesMerged,
    InmateTemporarilyAbsent,
    InmateTransferred,
)
from bekal.shared.messaging.consumer import (
    BatchContext,
    Delivered,
    HandlerContext,
    Subscriptions,
)
from bekal.training.services import erasure, merges, replica

log = structlog.get_logger(__name__)

subscriptions = Subscriptions("training")

PersonEvent = TypeVar(
    "PersonEvent",
    InmateReleased,
    InmateTransferred,
    InmateTemporarilyAbsent,
    InmateReturned,
    InmateDied,
    InmateConsentWithdrawn,
    InmateErased,
)


async def _routed(event: PersonEvent, ctx: HandlerContext) -> PersonEvent:
    """The event as it applies here: a merged-away id is routed to the surviving id.

    The registry publishes a merge after the old record's own events, but a replay or a
    re-sent event can still name the old id; it concerns the same person, now kept under the
    surviving id, and must not bring the old record back.
    """
    return (await _all_routed([event], ctx.session))[0]


async def _all_routed(events: Sequence[PersonEvent], session: AsyncSession) -> list[PersonEvent]:
    """``_routed`` for a batch's events, their survivors read at once."""
    survivors = await merges.surviving_ids(
        session=session, participant_ids={event.participant_id for event in events}
    )
    routed = []
    for event in events:
        survivor = survivors.get(event.participant_id)
        if survivor is not None:
            log.info("event_routed_to_surviving_participant", event_type=type(event).__name__)
            event = event.model_copy(update={"participant_id": survivor})
        routed.append(event)
    return routed


@subscriptions.on(FacilityRegistered, FacilityUpdated)
async def on_facility(event: FacilityRegistered | FacilityUpdated, ctx: HandlerContext) -> None:
    await replica.apply_facility(session=ctx.session, event=event, as_of=ctx.meta.time)


@subscriptions.on(InmateShared)
async def on_inmate_shared(event: InmateShared, ctx: HandlerContext) -> None:
    await on_inmates_shared([Delivered(event, ctx.meta)], BatchContext(ctx.session))


@subscriptions.on_batch(InmateShared)
async def on_inmates_shared(items: Sequence[Delivered[InmateShared]], ctx: BatchContext) -> None:
    ignored = await replica.apply_inmates_shared(
        session=ctx.session, events=[(item.event, item.meta.time) for item in items]
    )
    if ignored:
        # The merged-away record's facts are obsolete; the survivor has its own InmateShared.
        log.info("merged_participant_share_ignored", count=ignored)


@subscriptions.on(InmateReleased)
async def on_inmate_released(event: InmateReleased, ctx: HandlerContext) -> None:
    await on_inmates_released([Delivered(event, ctx.meta)], BatchContext(ctx.session))


@subscriptions.on_batch(InmateReleased)
async def on_inmates_released(
    items: Sequence[Delivered[InmateReleased]], ctx: BatchContext
) -> None:
    routed = await _all_routed([item.event for item in items], ctx.session)
    events = [(event, item.meta.time) for event, item in zip(routed, items, strict=True)]
    endings = await replica.apply_inmates_released(session=ctx.session, events=events)
    for withdrawn in endings:
        if withdrawn:
            log.info("enrollments_withdrawn", reason="released", count=len(withdrawn))


@subscriptions.on(InmateTransferred)
async def on_inmate_transferred(event: InmateTransferred, ctx: HandlerContext) -> None:
    event = await _routed(event, ctx)
    withdrawn = await replica.apply_inmate_transferred(
        session=ctx.session, event=event, as_of=ctx.meta.time
    )
    if withdrawn:
        log.info("enrollments_withdrawn", reason="transferred", count=len(withdrawn))


@subscriptions.on(InmateTemporarilyAbsent)
async def on_inmate_absent(event: InmateTemporarilyAbsent, ctx: HandlerContext) -> None:
    event = await _routed(event, ctx)
    # Court, hospital or leave: the person comes back, so no course ends.
    await replica.apply_inmate_absent(session=ctx.session, event=event, as_of=ctx.meta.time)


@subscriptions.on(InmateReturned)
async def on_inmate_returned(event: InmateReturned, ctx: HandlerContext) -> None:
    event = await _routed(event, ctx)
    await replica.apply_inmate_returned(session=ctx.session, event=event, as_of=ctx.meta.time)


@subscriptions.on(InmateDied)
async def on_inmate_died(event: InmateDied, ctx: HandlerContext) -> None:
    event = await _routed(event, ctx)
    withdrawn = await replica.apply_inmate_died(
        session=ctx.session, event=event, as_of=ctx.meta.time
    )
    if withdrawn:
        log.info("enrollments_withdrawn", reason="died", count=len(withdrawn))


@subscriptions.on(InmatesMerged)
async def on_inmates_merged(event: InmatesMerged, ctx: HandlerContext) -> None:
    moved = await merges.apply_inmates_merged(session=ctx.session, event=event)
    log.info("participant_rekeyed", moved=moved)


@subscriptions.on(InmateConsentWithdrawn)
async def on_consent_withdrawn(event: InmateConsentWithdrawn, ctx: HandlerContext) -> None:
    event = await _routed(event, ctx)
    withdrawn = await replica.apply_inmate_consent_withdrawn(
        session=ctx.session, event=event, as_of=ctx.meta.time
    )
    checkpoint_after_commit(ctx.session)
    log.info("participant_anonymised", reason="consent_withdrawn", withdrawn=len(withdrawn))


@subscriptions.on(InmateErased)
async def on_inmate_erased(event: InmateErased, ctx: HandlerContext) -> None:
    event = await _routed(event, ctx)
    on = (ctx.meta.time or utcnow()).date()
    await replica.apply_inmate_erased(session=ctx.session, event=event, on=on, as_of=ctx.meta.time)
    if event.participant_id != erasure.ERASED:
        await erasure.refile_erased_participant(
            session=ctx.session, participant_id=event.participant_id, on=on
        )
    checkpoint_after_commit(ctx.session)
    log.info("participant_anonymised", reason="erased")
