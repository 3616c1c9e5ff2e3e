"""Consumed events: a participant who completed a course gets exactly one signed certificate."""

from __future__ import annotations

from bekal.certification import services
from bekal.shared.events.catalogue import ParticipantCompleted
from bekal.shared.messaging.consumer import HandlerContext, Subscriptions

subscriptions = Subscriptions("certification")

# The name under which the app's spec hands the handlers the issuer (signing key, address).
ISSUER = "issuer"


@subscriptions.on(ParticipantCompleted)
async def on_participant_completed(event: ParticipantCompleted, ctx: HandlerContext) -> None:
    issuer: services.Issuer = ctx.resources[ISSUER]
    # Idempotent by the enrollment, not only by the event id: a completion re-published
    # under a new id finds its certificate and does nothing.
    await services.issue_certificate(ctx.session, event=event, event_id=ctx.meta.id, issuer=issuer)
