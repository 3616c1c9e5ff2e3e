"""Consumer group "reporting": every event it reads becomes an upsert into a projection.

The busiest event types (shares of people, releases, enrolment events, certificates,
follow-ups) also have a batch handler: the runner gives it consecutive events of a fetched batch
at once. Each one-event handler is that batch handler applied to one event, so both follow the
same rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeAlias, TypedDict

from bekal.reporting.domain import EnrollmentStatus, SessionStatus
from bekal.reporting.services import common, people, projections
from bekal.shared.db import checkpoint_after_commit
from bekal.shared.events.catalogue import (
    CertificateIssued,
    CertificateReissued,
    CertificateRevoked,
    EnrollmentOutcome,
    EnrollmentWithdrawn,
    FacilityRegistered,
    FacilityUpdated,
    FollowUpRecorded,
    InmateConsentWithdrawn,
    InmateErased,
    InmateReleased,
    InmateShared,
    InmatesMerged,
    OutcomeCorrected,
    ParticipantCompleted,
    ParticipantEnrolled,
    ParticipantLeftWaitlist,
    ParticipantNotCompleted,
    ParticipantWaitlisted,
    ProgramPublished,
    ReadinessRecorded,
    SessionCancelled,
    SessionCompleted,
    SessionOpened,
    SessionScheduled,
    SessionStarted,
)
from bekal.shared.messaging.consumer import BatchContext, Delivered, HandlerContext, Subscriptions

subscriptions = Subscriptions("reporting")


@subscriptions.on(FacilityRegistered, FacilityUpdated)
async def on_facility(event: FacilityRegistered | FacilityUpdated, ctx: HandlerContext) -> None:
    await projections.apply_facility(session=ctx.session, event=event, at=ctx.meta.time)
    common.projections_changed(session=ctx.session, at=ctx.meta.time)


def _one(event: Any, ctx: HandlerContext) -> tuple[list[Delivered[Any]], BatchContext]:
    """A single event as a batch of one, for the batch handlers."""
    return [Delivered(event, ctx.meta)], BatchContext(session=ctx.session, resources=ctx.resources)


def _projections_changed(items: Sequence[Delivered[Any]], ctx: BatchContext) -> None:
    """Once per batch, to the newest event time in it: the value event by event would reach."""
    common.projections_changed(
        session=ctx.session, at=common.newest(item.meta.time for item in items)
    )


@subscriptions.on(InmateShared)
async def on_inmate_shared(event: InmateShared, ctx: HandlerContext) -> None:
    await on_inmates_shared(*_one(event, ctx))


@subscriptions.on_batch(InmateShared)
async def on_inmates_shared(items: Sequence[Delivered[InmateShared]], ctx: BatchContext) -> None:
    await people.record_participants(
        session=ctx.session, key=people.key_of(ctx.resources), events=[item.event for item in items]
    )
    _projections_changed(items, ctx)


@subscriptions.on(ProgramPublished)
async def on_program_published(event: ProgramPublished, ctx: HandlerContext) -> None:
    await projections.apply_program(session=ctx.session, event=event)
    common.projections_changed(session=ctx.session, at=ctx.meta.time)


@subscriptions.on(SessionScheduled)
async def on_session_scheduled(event: SessionScheduled, ctx: HandlerContext) -> None:
    await projections.schedule_session(session=ctx.session, event=event)
    common.projections_changed(session=ctx.session, at=ctx.meta.time)


@subscriptions.on(SessionOpened)
async def on_session_opened(event: SessionOpened, ctx: HandlerContext) -> None:
    await projections.change_session_status(
        session=ctx.session, session_id=event.session_id, status=SessionStatus.OPEN
    )
    common.projections_changed(session=ctx.session, at=ctx.meta.time)


@subscriptions.on(SessionStarted)
async def on_session_started(event: SessionStarted, ctx: HandlerContext) -> None:
    await projections.change_session_status(
        session=ctx.session, session_id=event.session_id, status=SessionStatus.RUNNING
    )
    common.projections_changed(session=ctx.session, at=ctx.meta.time)


@subscriptions.on(SessionCompleted)
async def on_session_completed(event: SessionCompleted, ctx: HandlerContext) -> None:
    await projections.change_session_status(
        session=ctx.session, session_id=event.session_id, status=SessionStatus.COMPLETED
    )
    common.projections_changed(session=ctx.session, at=ctx.meta.time)


@subscriptions.on(SessionCancelled)
async def on_session_cancelled(event: SessionCancelled, ctx: HandlerContext) -> None:
    await projections.change_session_status(
        session=ctx.session, session_id=event.session_id, status=SessionStatus.CANCELLED
    )
    common.projections_changed(session=ctx.session, at=ctx.meta.time)


EnrollmentEvent: TypeAlias = (
    ParticipantEnrolled
    | EnrollmentWithdrawn
    | ParticipantCompleted
    | ParticipantNotCompleted
    | OutcomeCorrected
)


class _EnrollmentIds(TypedDict):
    """The ids every enrolment event carries, as ``EnrollmentFact`` names them."""

    enrollment_id: uuid.UUID
    session_id: uuid.UUID
    participant_id: uuid.UUID


def enrollment_fact(event: EnrollmentEvent) -> projections.EnrollmentFact:
    """What an enrolment event says about its enrolment."""
    ids: _EnrollmentIds = {
        "enrollment_id": event.enrollment_id,
        "session_id": event.session_id,
        "participant_id": event.participant_id,
    }
    if isinstance(event, ParticipantEnrolled):
        return projections.EnrollmentFact(**ids, status=EnrollmentStatus.ENROLLED)
    if isinstance(event, EnrollmentWithdrawn):
        return projections.EnrollmentFact(
            **ids,
            # A withdrawal that folds a duplicate into the person's other enrolment is no
            # withdrawal.
            status=EnrollmentStatus.MERGED
            if event.merged_into_enrollment_id is not None
            else EnrollmentStatus.WITHDRAWN,
            withdrawal_reason=event.reason.value,
        )
    if isinstance(event, ParticipantCompleted):
        # The event names the participant (for the certificate); reporting keeps no names.
        return projections.EnrollmentFact(
            **ids,
            status=EnrollmentStatus.COMPLETED,
            program_id=event.program_id,
            end_date=event.end_date,
            sector=event.sector,
        )
    if isinstance(event, ParticipantNotCompleted):
        return projections.EnrollmentFact(
            **ids,
            status=EnrollmentStatus.NOT_COMPLETED,
            not_completed_reason=event.reason.value,
        )
    # Corrections replace the outcome; a correction to "completed" is followed by a
    # ParticipantCompleted carrying the program facts.
    completed = event.outcome is EnrollmentOutcome.COMPLETED
    return projections.EnrollmentFact(
        **ids,
        status=EnrollmentStatus.COMPLETED if completed else EnrollmentStatus.NOT_COMPLETED,
        not_completed_reason=None
        if completed or event.not_completed_reason is None
        else event.not_completed_reason.value,
    )


@subscriptions.on(
    ParticipantEnrolled,
    EnrollmentWithdrawn,
    ParticipantCompleted,
    ParticipantNotCompleted,
    OutcomeCorrected,
)
async def on_enrollment_event(event: EnrollmentEvent, ctx: HandlerContext) -> None:
    await on_enrollment_events(*_one(event, ctx))


@subscriptions.on_batch(
    ParticipantEnrolled,
    EnrollmentWithdrawn,
    ParticipantCompleted,
    ParticipantNotCompleted,
    OutcomeCorrected,
)
async def on_enrollment_events(
    items: Sequence[Delivered[EnrollmentEvent]], ctx: BatchContext
) -> None:
    await projections.record_enrollments(
        session=ctx.session,
        key=people.key_of(ctx.resources),
        facts=[enrollment_fact(item.event) for item in items],
    )
    _projections_changed(items, ctx)


@subscriptions.on(ParticipantWaitlisted, ParticipantLeftWaitlist)
async def on_waitlist(
    event: ParticipantWaitlisted | ParticipantLeftWaitlist, ctx: HandlerContext
) -> None:
    await projections.record_waitlist(
        session=ctx.session, key=people.key_of(ctx.resources), event=event
    )
    common.projections_changed(session=ctx.session, at=ctx.meta.time)


@subscriptions.on(ReadinessRecorded)
async def on_readiness_recorded(event: ReadinessRecorded, ctx: HandlerContext) -> None:
    await projections.record_readiness(
        session=ctx.session, key=people.key_of(ctx.resources), event=event
    )
    common.projections_changed(session=ctx.session, at=ctx.meta.time)


@subscriptions.on(FollowUpRecorded)
async def on_follow_up_recorded(event: FollowUpRecorded, ctx: HandlerContext) -> None:
    await on_follow_ups_recorded(*_one(event, ctx))


@subscriptions.on_batch(FollowUpRecorded)
async def on_follow_ups_recorded(
    items: Sequence[Delivered[FollowUpRecorded]], ctx: BatchContext
) -> None:
    await projections.record_follow_ups(
        session=ctx.session, key=people.key_of(ctx.resources), events=[item.event for item in items]
    )
    _projections_changed(items, ctx)


@subscriptions.on(CertificateIssued, CertificateReissued)
async def on_certificate_issued(
    event: CertificateIssued | CertificateReissued, ctx: HandlerContext
) -> None:
    await on_certificates_issued(*_one(event, ctx))


@subscriptions.on_batch(CertificateIssued, CertificateReissued)
async def on_certificates_issued(
    items: Sequence[Delivered[CertificateIssued | CertificateReissued]], ctx: BatchContext
) -> None:
    await projections.record_certificates(
        session=ctx.session, key=people.key_of(ctx.resources), events=[item.event for item in items]
    )
    _projections_changed(items, ctx)


@subscriptions.on(CertificateRevoked)
async def on_certificate_revoked(event: CertificateRevoked, ctx: HandlerContext) -> None:
    await projections.record_revocation(session=ctx.session, event=event)
    common.projections_changed(session=ctx.session, at=ctx.meta.time)


@subscriptions.on(InmateReleased)
async def on_inmate_released(event: InmateReleased, ctx: HandlerContext) -> None:
    await on_inmates_released(*_one(event, ctx))


@subscriptions.on_batch(InmateReleased)
async def on_inmates_released(
    items: Sequence[Delivered[InmateReleased]], ctx: BatchContext
) -> None:
    await people.release_participants(
        session=ctx.session, key=people.key_of(ctx.resources), events=[item.event for item in items]
    )
    _projections_changed(items, ctx)


@subscriptions.on(InmatesMerged)
async def on_inmates_merged(event: InmatesMerged, ctx: HandlerContext) -> None:
    await people.merge_participants(
        session=ctx.session, key=people.key_of(ctx.resources), event=event
    )
    common.projections_changed(session=ctx.session, at=ctx.meta.time)


@subscriptions.on(InmateErased, InmateConsentWithdrawn)
async def on_inmate_erased(
    event: InmateErased | InmateConsentWithdrawn, ctx: HandlerContext
) -> None:
    await people.erase_participant(
        session=ctx.session, key=people.key_of(ctx.resources), participant_id=event.participant_id
    )
    checkpoint_after_commit(ctx.session)
    common.projections_changed(session=ctx.session, at=ctx.meta.time)
