"""Consumed events: a completed course gets one signed certificate; corrections of the outcome,
erasures and merges apply."""

from __future__ import annotations

from collections.abc import Sequence

from bekal.certification.services.corrections import (
    apply_enrollment_merged_away,
    apply_outcome_corrected,
)
from bekal.certification.services.erasure import erase_participant, merge_participants
from bekal.certification.services.issuing import issue_certificate, issue_certificates, issued_event
from bekal.certification.services.keys import Issuer
from bekal.shared.db import checkpoint_after_commit
from bekal.shared.events.catalogue import (
    EnrollmentWithdrawn,
    InmateConsentWithdrawn,
    InmateErased,
    InmatesMerged,
    OutcomeCorrected,
    ParticipantCompleted,
)
from bekal.shared.messaging.consumer import (
    BatchContext,
    Delivered,
    HandlerContext,
    Subscriptions,
)

subscriptions = Subscriptions("certification")

# The name under which the app's spec hands the handlers the issuer (signing key, address).
ISSUER = "issuer"


@subscriptions.on(ParticipantCompleted)
async def on_participant_completed(event: ParticipantCompleted, ctx: HandlerContext) -> None:
    issuer: Issuer = ctx.resources[ISSUER]
    # Idempotent by the enrollment, not only by the event id: a completion re-published
    # under a new id finds its certificate and does nothing.
    await issue_certificate(session=ctx.session, event=event, event_id=ctx.meta.id, issuer=issuer)


@subscriptions.on_batch(ParticipantCompleted)
async def on_participants_completed(
    items: Sequence[Delivered[ParticipantCompleted]], ctx: BatchContext
) -> None:
    # The end of a session completes everyone in it at once: one batch draws their numbers
    # and status list places and writes their certificates together.
    issuer: Issuer = ctx.resources[ISSUER]
    results = await issue_certificates(
        session=ctx.session,
        completions=[(item.event, item.meta.id) for item in items],
        issuer=issuer,
    )
    for item, (certificate, issued_now) in zip(items, results, strict=True):
        if certificate is not None and issued_now:
            ctx.publish(issued_event(certificate), cause=item.meta)


@subscriptions.on(OutcomeCorrected)
async def on_outcome_corrected(event: OutcomeCorrected, ctx: HandlerContext) -> None:
    # Pass -> fail revokes the certificate; fail -> pass issues one (again). Runs before the
    # ParticipantCompleted that follows a correction to "completed" on the same partition.
    issuer: Issuer = ctx.resources[ISSUER]
    await apply_outcome_corrected(session=ctx.session, event=event, issuer=issuer)


@subscriptions.on(EnrollmentWithdrawn)
async def on_enrollment_withdrawn(event: EnrollmentWithdrawn, ctx: HandlerContext) -> None:
    # Only a withdrawal that folds a duplicate enrolment into another can touch a certificate.
    await apply_enrollment_merged_away(session=ctx.session, event=event)


@subscriptions.on(InmateErased, InmateConsentWithdrawn)
async def on_person_erased(
    event: InmateErased | InmateConsentWithdrawn, ctx: HandlerContext
) -> None:
    # Both mean: anonymise the person here. Of their certificates only the number and a hash
    # of the credential stay, so one the person still holds can be verified when presented.
    # Only an erasure is final: after a consent withdrawal a new consent may come, and with
    # it new courses and certificates.
    await erase_participant(
        session=ctx.session,
        participant_id=event.participant_id,
        final=isinstance(event, InmateErased),
    )
    checkpoint_after_commit(ctx.session)


@subscriptions.on(InmatesMerged)
async def on_inmates_merged(event: InmatesMerged, ctx: HandlerContext) -> None:
    await merge_participants(
        session=ctx.session,
        merged_id=event.participant_id,
        surviving_id=event.surviving_participant_id,
    )
