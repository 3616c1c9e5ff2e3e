"""Fold the training and certification events into the projections: facilities, programs,
sessions, enrolments, certificates, revocations, follow-ups, readiness and waiting lists."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.reporting.domain import (
    EnrollmentStatus,
    SessionStatus,
    is_later_follow_up,
    is_newer,
    merge_enrollment_status,
    merge_session_status,
    ready_to_trade,
    reporting_year,
)
from bekal.reporting.models import (
    Certificate,
    CertificateRevocation,
    Enrollment,
    Facility,
    Program,
    TrainingSession,
    WaitlistEntry,
)
from bekal.reporting.services.people import ErasureKey, identities, resolve_participant
from bekal.shared.db import among
from bekal.shared.events.catalogue import (
    CertificateIssued,
    CertificateReissued,
    CertificateRevoked,
    FacilityRegistered,
    FacilityUpdated,
    FollowUpRecorded,
    ParticipantLeftWaitlist,
    ParticipantWaitlisted,
    ProgramPublished,
    ReadinessRecorded,
    SessionScheduled,
)


async def apply_facility(
    *, session: AsyncSession, event: FacilityRegistered | FacilityUpdated, at: datetime | None
) -> None:
    """Both facility events carry the whole state: keep the newest."""
    row = await session.get(Facility, event.facility_id)
    if row is None:
        row = Facility(id=event.facility_id)
        session.add(row)
    elif not is_newer(at, row.as_of):
        return
    row.code = event.code
    row.name = event.name
    row.kind = event.kind.value
    row.facility_class = event.facility_class.value
    row.province = event.province
    row.regional_office = event.regional_office
    row.active = event.active
    row.as_of = at


async def apply_program(*, session: AsyncSession, event: ProgramPublished) -> None:
    """Reports label a program by its latest version; an older version arriving late is ignored."""
    row = await session.get(Program, event.program_id)
    if row is None:
        row = Program(id=event.program_id)
        session.add(row)
    elif row.version > event.program_version:
        return
    row.version = event.program_version
    row.code = event.code
    row.title = event.title
    row.sector = event.sector
    row.partner = event.partner
    row.hours = event.hours


async def schedule_session(*, session: AsyncSession, event: SessionScheduled) -> None:
    row = await session.get(TrainingSession, event.session_id)
    if row is None:
        row = TrainingSession(id=event.session_id)
        session.add(row)
    row.program_id = event.program_id
    row.program_version = event.program_version
    row.facility_id = event.facility_id
    row.start_date = event.start_date
    row.end_date = event.end_date
    row.year = reporting_year(event.end_date)
    row.end_day = event.end_date.toordinal()
    row.capacity = event.capacity
    row.status = merge_session_status(row.status, SessionStatus.PLANNED).value


async def change_session_status(
    *, session: AsyncSession, session_id: uuid.UUID, status: SessionStatus
) -> None:
    """A status event may come before the scheduling one: keep a row with only what is known."""
    row = await session.get(TrainingSession, session_id)
    if row is None:
        session.add(TrainingSession(id=session_id, status=status.value))
        return
    row.status = merge_session_status(row.status, status).value


@dataclass(frozen=True)
class EnrollmentFact:
    """What one enrolment event says about its enrolment (see ``record_enrollments``)."""

    enrollment_id: uuid.UUID
    session_id: uuid.UUID
    participant_id: uuid.UUID
    status: EnrollmentStatus
    withdrawal_reason: str | None = None
    not_completed_reason: str | None = None
    program_id: uuid.UUID | None = None
    end_date: date | None = None
    sector: str | None = None


async def record_enrollment(
    *,
    session: AsyncSession,
    key: ErasureKey,
    enrollment_id: uuid.UUID,
    session_id: uuid.UUID,
    participant_id: uuid.UUID,
    status: EnrollmentStatus,
    withdrawal_reason: str | None = None,
    not_completed_reason: str | None = None,
    program_id: uuid.UUID | None = None,
    end_date: date | None = None,
    sector: str | None = None,
) -> None:
    """Upsert one enrolment from any of its events; an outcome is never undone by a late enrol."""
    await record_enrollments(
        session=session,
        key=key,
        facts=[
            EnrollmentFact(
                enrollment_id=enrollment_id,
                session_id=session_id,
                participant_id=participant_id,
                status=status,
                withdrawal_reason=withdrawal_reason,
                not_completed_reason=not_completed_reason,
                program_id=program_id,
                end_date=end_date,
                sector=sector,
            )
        ],
    )


async def record_enrollments(
    *, session: AsyncSession, key: ErasureKey, facts: Sequence[EnrollmentFact]
) -> None:
    """Apply enrolment facts in order, as ``record_enrollment`` would one by one.

    One statement reads the enrolments already known; the people of new ones are resolved
    together (merges and erasures do not change between facts of the same batch); the rest is
    done in order in memory and written when the transaction flushes. A later fact for the
    same enrolment in the same batch sees the row as the earlier one left it.
    """
    if not facts:
        return
    rows: dict[uuid.UUID, Enrollment] = {
        row.id: row
        for row in await session.scalars(
            select(Enrollment).where(
                among(session, Enrollment.id, {f.enrollment_id for f in facts})
            )
        )
    }
    new = [f for f in facts if f.enrollment_id not in rows]
    people = (
        await identities(session=session, key=key, participant_ids={f.participant_id for f in new})
        if new
        else None
    )
    for fact in facts:
        row = rows.get(fact.enrollment_id)
        if row is None:
            assert people is not None
            row = Enrollment(
                id=fact.enrollment_id,
                session_id=fact.session_id,
                participant_id=people.file_under(fact.participant_id, fact.enrollment_id),
            )
            session.add(row)
            rows[row.id] = row
            current = None
        else:
            current = row.status
        merged = merge_enrollment_status(current, fact.status)
        row.status = merged.value
        if merged is fact.status and fact.status is not EnrollmentStatus.ENROLLED:
            row.withdrawal_reason = fact.withdrawal_reason
            row.not_completed_reason = fact.not_completed_reason
        if fact.program_id is not None:
            row.program_id = fact.program_id
        if fact.end_date is not None:
            row.year = reporting_year(fact.end_date)
            row.end_day = fact.end_date.toordinal()
        if fact.sector is not None:
            row.sector = fact.sector


async def record_certificates(
    *,
    session: AsyncSession,
    key: ErasureKey,
    events: Sequence[CertificateIssued | CertificateReissued],
) -> None:
    """Certificates are immutable facts, one row each; a re-issued one is another row.

    Applied in order, as one by one: the first event of a certificate id not yet known adds
    its row, any other changes nothing. One statement reads the known ids, the people of the
    new ones are resolved together.
    """
    if not events:
        return
    known = set(
        await session.scalars(
            select(Certificate.id).where(
                among(session, Certificate.id, {e.certificate_id for e in events})
            )
        )
    )
    new: dict[uuid.UUID, CertificateIssued | CertificateReissued] = {}
    for event in events:
        if event.certificate_id not in known:
            new.setdefault(event.certificate_id, event)
    if not new:
        return
    people = await identities(
        session=session, key=key, participant_ids={e.participant_id for e in new.values()}
    )
    session.add_all(
        Certificate(
            id=event.certificate_id,
            number=event.number,
            enrollment_id=event.enrollment_id,
            session_id=event.session_id,
            participant_id=people.file_under(event.participant_id, event.enrollment_id),
            program_id=event.program_id,
            issued_on=event.issued_on,
            issued_day=event.issued_on.toordinal(),
        )
        for event in new.values()
    )


async def record_revocation(*, session: AsyncSession, event: CertificateRevoked) -> None:
    if await session.get(CertificateRevocation, event.certificate_id) is not None:
        return
    session.add(
        CertificateRevocation(
            certificate_id=event.certificate_id,
            enrollment_id=event.enrollment_id,
            kind=event.kind.value,
            revoked_on=event.revoked_on,
            replaced_by_id=event.replaced_by_certificate_id,
        )
    )


async def record_follow_ups(
    *, session: AsyncSession, key: ErasureKey, events: Sequence[FollowUpRecorded]
) -> None:
    """Keep each enrolment's latest follow-up (later checkpoint, then later date): the
    graduate's situation. In order, as one by one; one statement reads the batch's enrolments
    (a field officer's day of follow-ups arrives together)."""
    ids = {event.enrollment_id for event in events}
    rows = {
        row.id: row
        for row in await session.scalars(
            select(Enrollment).where(among(session, Enrollment.id, ids))
        )
    }
    for event in events:
        row = rows.get(event.enrollment_id)
        if row is None:
            row = rows[event.enrollment_id] = await _enrollment_row(
                session=session, key=key, event=event
            )
        if is_later_follow_up(
            (event.checkpoint_months, event.recorded_on),
            (row.follow_up_checkpoint, row.follow_up_on),
        ):
            row.follow_up_situation = event.situation.value
            row.follow_up_checkpoint = event.checkpoint_months
            row.follow_up_on = event.recorded_on


async def _enrollment_row(
    *, session: AsyncSession, key: ErasureKey, event: FollowUpRecorded | ReadinessRecorded
) -> Enrollment:
    """The enrolment's row, made (enrolled) if it is not known yet: the enrolment's own events
    come first on its partition; guard anyway."""
    row = await session.get(Enrollment, event.enrollment_id)
    if row is None:
        await record_enrollment(
            session=session,
            key=key,
            enrollment_id=event.enrollment_id,
            session_id=event.session_id,
            participant_id=event.participant_id,
            status=EnrollmentStatus.ENROLLED,
        )
        row = await session.get(Enrollment, event.enrollment_id)
        assert row is not None
    return row


async def record_readiness(
    *, session: AsyncSession, key: ErasureKey, event: ReadinessRecorded
) -> None:
    """Keep the latest readiness checklist (later date; on a tie, the readier one)."""
    row = await _enrollment_row(session=session, key=key, event=event)
    ready = ready_to_trade(
        identity_card=event.identity_card,
        bank_account=event.bank_account,
        nib=event.nib,
        starter_tools=event.starter_tools,
    )
    if (
        row.readiness_on is None
        or event.recorded_on > row.readiness_on
        or (event.recorded_on == row.readiness_on and ready)
    ):
        row.ready_to_trade = ready
        row.readiness_on = event.recorded_on


async def record_waitlist(
    *,
    session: AsyncSession,
    key: ErasureKey,
    event: ParticipantWaitlisted | ParticipantLeftWaitlist,
) -> None:
    """A waiting-list entry, joined or ended (either may arrive first)."""
    row = await session.get(WaitlistEntry, event.enrollment_id)
    if row is None:
        participant_id = await resolve_participant(
            session=session,
            key=key,
            participant_id=event.participant_id,
            enrollment_id=event.enrollment_id,
        )
        row = WaitlistEntry(
            id=event.enrollment_id, session_id=event.session_id, participant_id=participant_id
        )
        session.add(row)
    if isinstance(event, ParticipantWaitlisted):
        row.waitlisted_on = event.waitlisted_on
    else:
        row.left_on = event.left_on
