"""Consumed events: a participant who completed a course gets exactly one signed certificate."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bekal.certification import services
from bekal.certification.signing import CertificateSigner
from bekal.shared.db import Database
from bekal.shared.events.catalogue import ParticipantCompleted
from bekal.shared.messaging.consumer import HandlerContext, Subscriptions

subscriptions = Subscriptions("certification")

# A handler receives only the event and a session, while the signing key belongs to the app
# (its settings name the key file). At start-up the app puts its signer into the info of every
# session its database hands out; the handler takes it from there.
_SIGNER = "certificate_signer"


def bind_signer(db: Database, signer: CertificateSigner) -> None:
    """Make ``signer`` reachable from every session ``db`` opens from now on."""
    db.sessionmaker.configure(info={_SIGNER: signer})


def signer_of(session: AsyncSession) -> CertificateSigner:
    signer = session.info.get(_SIGNER)
    if not isinstance(signer, CertificateSigner):
        # Only possible in the instant before start-up binds it; the runner retries.
        raise RuntimeError("no certificate signer bound to this database yet")
    return signer


@subscriptions.on(ParticipantCompleted)
async def on_participant_completed(event: ParticipantCompleted, ctx: HandlerContext) -> None:
    # Idempotent by the enrollment, not only by the event id: a completion re-published
    # under a new id finds its certificate and does nothing.
    await services.issue_certificate(
        ctx.session, event=event, event_id=ctx.meta.id, signer=signer_of(ctx.session)
    )
