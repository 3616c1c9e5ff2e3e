"""Consumer group "reporting": every event it reads becomes an upsert into a projection."""

from __future__ import annotations

from bekal.reporting import services
from bekal.reporting.domain import EnrollmentStatus, SessionStatus
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
from bekal.shared.messaging.consumer import HandlerContext, Subscriptions

subscriptions = Subscriptions("reporting")


@subscriptions.on(FacilityRegistered, FacilityUpdated)
async def on_facility(event: FacilityRegistered | FacilityUpdated, ctx: HandlerContext) -> None:
    await services.apply_facility(ctx.session, event=event, at=ctx.meta.time)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(InmateShared)
async def on_inmate_shared(event: InmateShared, ctx: HandlerContext) -> None:
    await services.record_participant(ctx.session, event=event)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(ProgramPublished)
async def on_program_published(event: ProgramPublished, ctx: HandlerContext) -> None:
    await services.apply_program(ctx.session, event=event)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(SessionScheduled)
async def on_session_scheduled(event: SessionScheduled, ctx: HandlerContext) -> None:
    await services.schedule_session(ctx.session, event=event)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(SessionOpened)
async def on_session_opened(event: SessionOpened, ctx: HandlerContext) -> None:
    await services.change_session_status(
        ctx.session, session_id=event.session_id, status=SessionStatus.OPEN
    )
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
        # A withdrawal that folds a duplicate into the person's other enrolment is no withdrawal.
        status=EnrollmentStatus.MERGED
        if event.merged_into_enrollment_id is not None
        else EnrollmentStatus.WITHDRAWN,
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
        sector=event.sector,
    )
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(ParticipantNotCompleted)
async def on_participant_not_completed(event: ParticipantNotCompleted, ctx: HandlerContext) -> None:
    await services.record_enrollment(
        ctx.session,
        enrollment_id=event.enrollment_id,
        session_id=event.session_id,
        participant_id=event.participant_id,
        status=EnrollmentStatus.NOT_COMPLETED,
        not_completed_reason=event.reason.value,
    )
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(OutcomeCorrected)
async def on_outcome_corrected(event: OutcomeCorrected, ctx: HandlerContext) -> None:
    # Corrections replace the outcome; a correction to "completed" is followed by a
    # ParticipantCompleted carrying the program facts.
    completed = event.outcome is EnrollmentOutcome.COMPLETED
    await services.record_enrollment(
        ctx.session,
        enrollment_id=event.enrollment_id,
        session_id=event.session_id,
        participant_id=event.participant_id,
        status=EnrollmentStatus.COMPLETED if completed else EnrollmentStatus.NOT_COMPLETED,
        not_completed_reason=None
        if completed or event.not_completed_reason is None
        else event.not_completed_reason.value,
    )
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(ParticipantWaitlisted, ParticipantLeftWaitlist)
async def on_waitlist(
    event: ParticipantWaitlisted | ParticipantLeftWaitlist, ctx: HandlerContext
) -> None:
    await services.record_waitlist(ctx.session, event=event)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(ReadinessRecorded)
async def on_readiness_recorded(event: ReadinessRecorded, ctx: HandlerContext) -> None:
    await services.record_readiness(ctx.session, event=event)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(FollowUpRecorded)
async def on_follow_up_recorded(event: FollowUpRecorded, ctx: HandlerContext) -> None:
    await services.record_follow_up(ctx.session, event=event)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(CertificateIssued, CertificateReissued)
async def on_certificate_issued(
    event: CertificateIssued | CertificateReissued, ctx: HandlerContext
) -> None:
    await services.record_certificate(ctx.session, event=event)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(CertificateRevoked)
async def on_certificate_revoked(event: CertificateRevoked, ctx: HandlerContext) -> None:
    await services.record_revocation(ctx.session, event=event)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(InmateReleased)
async def on_inmate_released(event: InmateReleased, ctx: HandlerContext) -> None:
    await services.release_participant(ctx.session, event=event)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(InmatesMerged)
async def on_inmates_merged(event: InmatesMerged, ctx: HandlerContext) -> None:
    await services.merge_participants(ctx.session, event=event)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)


@subscriptions.on(InmateErased, InmateConsentWithdrawn)
async def on_inmate_erased(
    event: InmateErased | InmateConsentWithdrawn, ctx: HandlerContext
) -> None:
    await services.erase_participant(ctx.session, participant_id=event.participant_id)
    await services.advance_data_as_of(ctx.session, at=ctx.meta.time)
