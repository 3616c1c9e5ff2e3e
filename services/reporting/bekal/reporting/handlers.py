"""Consumer group "reporting": every event it reads becomes an upsert into a projection."""

from __future__ import annotations

from bekal.reporting import services
from bekal.reporting.domain import EnrollmentStatus, SessionStatus
from bekal.shared.events.catalogue import (
    CertificateIssued,
    EnrollmentWithdrawn,
    FacilityRegistered,
    FacilityUpdated,
    ParticipantCompleted,
    ParticipantEnrolled,
    ParticipantNotCompleted,
    ProgramPublished,
    SessionCancelled,
    SessionCompleted,
    SessionScheduled,
    SessionStarted,
)
from bekal.shared.messaging.consumer import HandlerContext, Subscriptions

subscriptions = Subscriptions("reporting")


@subscriptions.on(FacilityRegistered, FacilityUpdated)
async def on_facility(event: FacilityRegistered | FacilityUpdated, ctx: HandlerContext) -> None:
    await services.apply_facility(ctx.session, event=event, at=ctx.meta.time)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(ProgramPublished)
async def on_program_published(event: ProgramPublished, ctx: HandlerContext) -> None:
    await services.apply_program(ctx.session, event=event)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(SessionScheduled)
async def on_session_scheduled(event: SessionScheduled, ctx: HandlerContext) -> None:
    await services.schedule_session(ctx.session, event=event)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(SessionStarted)
async def on_session_started(event: SessionStarted, ctx: HandlerContext) -> None:
    await services.change_session_status(
        ctx.session, session_id=event.session_id, status=SessionStatus.RUNNING
    )
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(SessionCompleted)
async def on_session_completed(event: SessionCompleted, ctx: HandlerContext) -> None:
    await services.change_session_status(
        ctx.session, session_id=event.session_id, status=SessionStatus.COMPLETED
    )
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(SessionCancelled)
async def on_session_cancelled(event: SessionCancelled, ctx: HandlerContext) -> None:
    await services.change_session_status(
        ctx.session, session_id=event.session_id, status=SessionStatus.CANCELLED
    )
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(ParticipantEnrolled)
async def on_participant_enrolled(event: ParticipantEnrolled, ctx: HandlerContext) -> None:
    await services.record_enrollment(
        ctx.session,
        enrollment_id=event.enrollment_id,
        session_id=event.session_id,
        participant_id=event.participant_id,
        status=EnrollmentStatus.ENROLLED,
    )
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(EnrollmentWithdrawn)
async def on_enrollment_withdrawn(event: EnrollmentWithdrawn, ctx: HandlerContext) -> None:
    await services.record_enrollment(
        ctx.session,
        enrollment_id=event.enrollment_id,
        session_id=event.session_id,
        participant_id=event.participant_id,
        status=EnrollmentStatus.WITHDRAWN,
        withdrawal_reason=event.reason.value,
    )
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(ParticipantCompleted)
async def on_participant_completed(event: ParticipantCompleted, ctx: HandlerContext) -> None:
    # The event names the participant (for the certificate); reporting keeps no names.
    await services.record_enrollment(
        ctx.session,
        enrollment_id=event.enrollment_id,
        session_id=event.session_id,
        participant_id=event.participant_id,
        status=EnrollmentStatus.COMPLETED,
        program_id=event.program_id,
        end_date=event.end_date,
    )
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(ParticipantNotCompleted)
async def on_participant_not_completed(
    event: ParticipantNotCompleted, ctx: HandlerContext
) -> None:
    await services.record_enrollment(
        ctx.session,
        enrollment_id=event.enrollment_id,
        session_id=event.session_id,
        participant_id=event.participant_id,
        status=EnrollmentStatus.NOT_COMPLETED,
        not_completed_reason=event.reason.value,
    )
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(CertificateIssued)
async def on_certificate_issued(event: CertificateIssued, ctx: HandlerContext) -> None:
    await services.record_certificate(ctx.session, event=event)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)
