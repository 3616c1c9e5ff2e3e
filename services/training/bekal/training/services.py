"""Training use cases: take the caller's transaction, apply the rules, write rows and events."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bekal.shared.auth import Principal, Role
from bekal.shared.db import among, insert_rows, utcnow
from bekal.shared.events.catalogue import (
    CompetencyUnit,
    EnrollmentOutcome,
    EnrollmentWithdrawn,
    FacilityRegistered,
    FacilityUpdated,
    FollowUpRecorded,
    FollowUpSituation,
    InmateConsentWithdrawn,
    InmateDied,
    InmateErased,
    InmateReleased,
    InmateReturned,
    InmateShared,
    InmatesMerged,
    InmateTemporarilyAbsent,
    InmateTransferred,
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
    WithdrawalReason,
)
from bekal.shared.idempotency import IdempotencyRecord
from bekal.shared.messaging.models import OutboxMessage
from bekal.shared.messaging.outbox import add_event
from bekal.shared.pagination import Page, paginate, parse_utc
from bekal.shared.problems import Conflict, Forbidden, NotFound, Problem, RuleViolation
from bekal.training import domain
from bekal.training.domain import (
    AssessmentResult,
    AttendanceStatus,
    EnrollmentStatus,
    ParticipantFacts,
    ParticipantStatus,
    RuleBroken,
    SessionStatus,
)
from bekal.training.models import (
    Assessment,
    AttendanceChange,
    AttendanceRecord,
    Enrollment,
    Facility,
    FollowUp,
    MergedParticipant,
    Participant,
    Program,
    ReadinessChecklist,
    TrainingSession,
)
from bekal.training.schemas import (
    AssessmentSheet,
    AttendanceSheet,
    CorrectionCreate,
    EnrollmentCreate,
    FollowUpIn,
    ProgramCreate,
    ProgramUpdate,
    ReadinessIn,
    SessionCreate,
)

# An enrolment as shown: the row and the participant's name from the replica.
EnrollmentView = tuple[Enrollment, str | None]


def _refused(rule: RuleBroken) -> Problem:
    errors = [{"field": rule.field, "message": rule.message}]
    if rule.conflict:
        return Conflict(rule.message, errors=errors)
    return RuleViolation(rule.message, errors=errors)


def _invalid(field: str, message: str) -> RuleViolation:
    return RuleViolation(message, errors=[{"field": field, "message": message}])


def _is_stale(current: datetime | None, incoming: datetime | None) -> bool:
    """An event older than the one a replica row already reflects must not overwrite it."""
    return current is not None and incoming is not None and incoming < current


# --- replica of the registry (fed by events) -----------------------------------------------


async def apply_facility(
    *, session: AsyncSession, event: FacilityRegistered | FacilityUpdated, as_of: datetime | None
) -> None:
    row = await session.get(Facility, event.facility_id)
    if row is not None and _is_stale(row.as_of, as_of):
        return
    if row is None:
        row = Facility(id=event.facility_id)
        session.add(row)
    row.code = event.code
    row.name = event.name
    row.province = event.province
    row.active = event.active
    row.as_of = as_of or row.as_of
    row.updated_at = utcnow()


_SHARED_FACTS = (
    "full_name",
    "sex",
    "birth_year",
    "facility_id",
    "admission_date",
    "expected_release_date",
    "updated_at",
)


async def apply_inmates_shared(
    *, session: AsyncSession, events: Sequence[tuple[InmateShared, datetime | None]]
) -> int:
    """Apply registry shares in order (each with its event time); returns how many were ignored.

    One statement reads the batch's merge tombstones, one upsert writes everyone else. The
    effect is that of applying each event alone: a merged-away id's share is ignored (the
    survivor has its own InmateShared), an event older than the row's state changes nothing, a
    later event for the same person in the same batch wins, and a person seen for the first
    time is in custody (a later release or transfer event moves them on).
    """
    # Changes earlier events of this transaction left pending go first: the upsert compares
    # with what is stored.
    await session.flush()
    ids = {event.participant_id for event, _ in events}
    merged = set(
        await session.scalars(
            select(MergedParticipant.id).where(among(session, MergedParticipant.id, ids))
        )
    )
    latest: dict[uuid.UUID, dict[str, Any]] = {}
    ignored = 0
    for event, as_of in events:
        pid = event.participant_id
        if pid in merged:
            ignored += 1
            continue
        facts = {
            "full_name": event.full_name,
            "sex": event.sex.value,
            "birth_year": event.birth_year,
            "facility_id": event.facility_id,
            "admission_date": event.admission_date,
            "expected_release_date": event.expected_release_date,
            "updated_at": utcnow(),
        }
        if (seen := latest.get(pid)) is None:
            latest[pid] = {
                "id": pid,
                "status": ParticipantStatus.IN_CUSTODY.value,
                "as_of": as_of,
                **facts,
            }
        elif not _is_stale(seen["as_of"], as_of):
            seen.update(facts, as_of=as_of or seen["as_of"])
    await insert_rows(
        session,
        Participant.__table__,  # type: ignore[arg-type]
        list(latest.values()),
        key=["id"],
        update=[*_SHARED_FACTS, "as_of"],
        unless_newer="as_of",
    )
    # Rows this transaction had loaded are now behind the table: read them again if used.
    for loaded in list(session.identity_map.values()):
        if isinstance(loaded, Participant) and loaded.id in latest:
            session.expire(loaded)
    return ignored


async def apply_inmate_released(
    *, session: AsyncSession, event: InmateReleased, as_of: datetime | None
) -> list[EnrollmentWithdrawn]:
    row = await session.get(Participant, event.participant_id)
    if row is not None and not _is_stale(row.as_of, as_of):
        row.status = ParticipantStatus.RELEASED.value
        row.released_on = event.released_on
        row.release_kind = event.release_kind.value
        row.as_of = as_of or row.as_of
        row.updated_at = utcnow()
    return await withdraw_from_open_sessions(
        session=session,
        participant_id=event.participant_id,
        reason=WithdrawalReason.RELEASED,
        on=event.released_on,
    )


async def apply_inmate_transferred(
    *, session: AsyncSession, event: InmateTransferred, as_of: datetime | None
) -> list[EnrollmentWithdrawn]:
    row = await session.get(Participant, event.participant_id)
    if row is not None and not _is_stale(row.as_of, as_of):
        row.facility_id = event.to_facility_id
        row.as_of = as_of or row.as_of
        row.updated_at = utcnow()
    return await withdraw_from_open_sessions(
        session=session,
        participant_id=event.participant_id,
        reason=WithdrawalReason.TRANSFERRED,
        on=event.transferred_on,
        moved_to_facility_id=event.to_facility_id,
    )


# Enrolments that hold a seat (or a place in the queue) in an open session.
LIVE_STATUSES = (EnrollmentStatus.ENROLLED.value, EnrollmentStatus.WAITLISTED.value)


async def withdraw_from_open_sessions(
    *,
    session: AsyncSession,
    participant_id: uuid.UUID,
    reason: WithdrawalReason,
    on: date,
    moved_to_facility_id: uuid.UUID | None = None,
) -> list[EnrollmentWithdrawn]:
    """End the person's live enrolments in open sessions; each ending is published once.

    A waiting-list entry ends with ParticipantLeftWaitlist instead (it never was an enrolment).
    Each freed seat goes to the first on that session's waiting list. A second delivery finds
    nothing still live and so publishes nothing.
    """
    session_ids = select(Enrollment.session_id).where(
        Enrollment.participant_id == participant_id, Enrollment.status.in_(LIVE_STATUSES)
    )
    # Lock the sessions first (in id order, like every other writer) so a completion of the
    # same session cannot interleave with this withdrawal and overwrite it.
    sessions = {
        s.id: s
        for s in (
            await session.scalars(
                select(TrainingSession)
                .where(TrainingSession.id.in_(session_ids))
                .order_by(TrainingSession.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).all()
    }
    if not sessions:
        return []
    enrollments = (
        await session.scalars(
            select(Enrollment)
            .where(
                Enrollment.participant_id == participant_id,
                Enrollment.session_id.in_(list(sessions)),
                Enrollment.status.in_(LIVE_STATUSES),
            )
            .execution_options(populate_existing=True)
        )
    ).all()
    published: list[EnrollmentWithdrawn] = []
    freed: set[uuid.UUID] = set()
    for enrollment in enrollments:
        ts = sessions[enrollment.session_id]
        if not domain.is_withdrawable(
            enrollment_status=EnrollmentStatus(enrollment.status),
            session_status=SessionStatus(ts.status),
            session_facility_id=ts.facility_id,
            moved_to_facility_id=moved_to_facility_id,
        ):
            continue
        event = _end_enrollment(session, enrollment, reason=reason, on=on)
        if event is not None:
            published.append(event)
            freed.add(ts.id)
    for sid in sorted(freed):
        await promote_waitlisted(session=session, ts=sessions[sid], today=on)
    return published


def _end_enrollment(
    session: AsyncSession, enrollment: Enrollment, *, reason: WithdrawalReason, on: date
) -> EnrollmentWithdrawn | None:
    """Withdraw one live enrolment; returns the withdrawal event if it held a seat."""
    was_waiting = enrollment.status == EnrollmentStatus.WAITLISTED.value
    enrollment.status = EnrollmentStatus.WITHDRAWN.value
    enrollment.withdrawal_reason = reason.value
    enrollment.withdrawn_on = on
    enrollment.updated_at = utcnow()
    if was_waiting:
        add_event(
            session,
            ParticipantLeftWaitlist(
                enrollment_id=enrollment.id,
                session_id=enrollment.session_id,
                participant_id=enrollment.participant_id,
                reason=reason.value,
                left_on=on,
            ),
        )
        return None
    event = EnrollmentWithdrawn(
        enrollment_id=enrollment.id,
        session_id=enrollment.session_id,
        participant_id=enrollment.participant_id,
        reason=reason,
        withdrawn_on=on,
    )
    add_event(session, event)
    return event


async def _seats_taken(session: AsyncSession, session_id: uuid.UUID) -> int:
    statuses = await session.scalars(
        select(Enrollment.status).where(Enrollment.session_id == session_id)
    )
    return sum(
        1
        for status in statuses
        if status not in (EnrollmentStatus.WITHDRAWN.value, EnrollmentStatus.WAITLISTED.value)
    )


async def promote_waitlisted(
    *, session: AsyncSession, ts: TrainingSession, today: date
) -> list[Enrollment]:
    """Give free seats of an open session to the waiting list, first come first served.

    The same enrolment row moves up; ParticipantEnrolled is published with its id.
    """
    if SessionStatus(ts.status) not in domain.LIVE_SESSION_STATUSES:
        return []
    await session.flush()
    free = domain.seats_free(capacity=ts.capacity, seats_taken=await _seats_taken(session, ts.id))
    if free == 0:
        return []
    waiting = (
        await session.scalars(
            select(Enrollment)
            .where(
                Enrollment.session_id == ts.id,
                Enrollment.status == EnrollmentStatus.WAITLISTED.value,
            )
            .order_by(Enrollment.created_at, Enrollment.id)
            .limit(free)
            .execution_options(populate_existing=True)
        )
    ).all()
    for enrollment in waiting:
        enrollment.status = EnrollmentStatus.ENROLLED.value
        enrollment.enrolled_on = today
        enrollment.updated_at = utcnow()
        add_event(
            session,
            ParticipantEnrolled(
                enrollment_id=enrollment.id,
                session_id=ts.id,
                participant_id=enrollment.participant_id,
                enrolled_on=today,
            ),
        )
    return list(waiting)


async def withdraw_enrollment(
    *,
    session: AsyncSession,
    session_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    today: date,
) -> TrainingSession:
    """Someone leaves a course (or its waiting list) for a reason of their own; seats move up."""
    ts = await get_session(session=session, session_id=session_id, lock=True)
    enrollment = await session.get(Enrollment, enrollment_id, populate_existing=True)
    if enrollment is None or enrollment.session_id != ts.id:
        raise NotFound("Pendaftaran tidak ditemukan pada sesi ini.")
    if SessionStatus(ts.status) not in domain.LIVE_SESSION_STATUSES:
        raise _refused(
            RuleBroken(
                "status", f"Sesi berstatus '{ts.status}'; tidak dapat diubah.", conflict=True
            )
        )
    if enrollment.status not in LIVE_STATUSES:
        raise _refused(
            RuleBroken(
                "enrollment_id",
                f"Pendaftaran berstatus '{enrollment.status}'; tidak dapat ditarik.",
                conflict=True,
            )
        )
    _end_enrollment(session, enrollment, reason=WithdrawalReason.OTHER, on=today)
    await promote_waitlisted(session=session, ts=ts, today=today)
    ts.updated_at = utcnow()
    return ts


# --- other registry facts: absence, death, merge, consent withdrawal, erasure -------------------


async def apply_inmate_absent(
    *, session: AsyncSession, event: InmateTemporarilyAbsent, as_of: datetime | None
) -> None:
    """A temporary absence is noted; it ends no course (the person comes back)."""
    row = await session.get(Participant, event.participant_id)
    if row is not None and not _is_stale(row.as_of, as_of):
        row.absent_from = event.absent_from
        row.as_of = as_of or row.as_of
        row.updated_at = utcnow()


async def apply_inmate_returned(
    *, session: AsyncSession, event: InmateReturned, as_of: datetime | None
) -> None:
    row = await session.get(Participant, event.participant_id)
    if row is not None and not _is_stale(row.as_of, as_of):
        row.absent_from = None
        row.facility_id = event.facility_id
        row.as_of = as_of or row.as_of
        row.updated_at = utcnow()


async def apply_inmate_died(
    *, session: AsyncSession, event: InmateDied, as_of: datetime | None
) -> list[EnrollmentWithdrawn]:
    row = await session.get(Participant, event.participant_id)
    if row is not None and not _is_stale(row.as_of, as_of):
        row.status = ParticipantStatus.RELEASED.value
        row.released_on = event.died_on
        row.release_kind = "died"
        row.as_of = as_of or row.as_of
        row.updated_at = utcnow()
    return await withdraw_from_open_sessions(
        session=session,
        participant_id=event.participant_id,
        reason=WithdrawalReason.OTHER,
        on=event.died_on,
    )


async def apply_inmate_consent_withdrawn(
    *, session: AsyncSession, event: InmateConsentWithdrawn, as_of: datetime | None = None
) -> list[EnrollmentWithdrawn]:
    """Open enrolments end (reason consent_withdrawn) and the name is removed; counts stay."""
    withdrawn = await withdraw_from_open_sessions(
        session=session,
        participant_id=event.participant_id,
        reason=WithdrawalReason.CONSENT_WITHDRAWN,
        on=event.withdrawn_on,
    )
    await anonymise_participant(
        session=session, participant_id=event.participant_id, on=event.withdrawn_on, as_of=as_of
    )
    return withdrawn


ANONYMOUS_NAME = ""


async def anonymise_participant(
    *, session: AsyncSession, participant_id: uuid.UUID, on: date, as_of: datetime | None = None
) -> bool:
    """Remove the person's name everywhere training keeps it; enrolments and outcomes stay.

    The name lives in the replica row, in the payloads of events already staged in the outbox
    (ParticipantCompleted carries it) and in remembered Idempotency-Key responses. Doing it
    twice changes nothing the second time.
    """
    row = await session.get(Participant, participant_id)
    if row is None:
        return False
    name = row.full_name
    row.full_name = ANONYMOUS_NAME
    row.anonymised_on = row.anonymised_on or on
    # A replayed (older) InmateShared must not bring the name back; a newer one (consent given
    # again) may.
    if as_of is not None and (row.as_of is None or as_of > row.as_of):
        row.as_of = as_of
    row.updated_at = utcnow()
    if not name:
        return False
    pid = str(participant_id)
    for message in (
        await session.scalars(select(OutboxMessage).where(OutboxMessage.payload.contains(pid)))
    ).all():
        message.payload = _scrub(message.payload, name)
    for record in (
        await session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.body.contains(pid)))
    ).all():
        record.body = _scrub(record.body, name)
    return True


def _scrub(text: str, name: str) -> str:
    encoded = json.dumps(name)[1:-1]  # as the name appears inside a JSON string
    return text.replace(encoded, ANONYMOUS_NAME)


async def apply_inmate_erased(
    *, session: AsyncSession, event: InmateErased, on: date, as_of: datetime | None = None
) -> None:
    await anonymise_participant(
        session=session, participant_id=event.participant_id, on=on, as_of=as_of
    )


async def surviving_id(session: AsyncSession, participant_id: uuid.UUID) -> uuid.UUID | None:
    """The id a merged-away participant id now lives under; None if it was never merged."""
    seen: set[uuid.UUID] = set()
    current = participant_id
    while (tomb := await session.get(MergedParticipant, current)) is not None:
        if tomb.surviving_id in seen:  # pragma: no cover - the registry never merges in a loop
            break
        seen.add(current)
        current = tomb.surviving_id
    return current if current != participant_id else None


# Who folded attendance in when a registry merge found one person twice in one session.
MERGE_ACTOR = "registry-merge"


async def apply_inmates_merged(*, session: AsyncSession, event: InmatesMerged) -> int:
    """Everything held under the merged id moves to the surviving id; returns rows re-keyed.

    A tombstone (old id -> surviving id) is kept so that later events for the old id are
    routed to the survivor (or, for InmateShared, ignored) and never bring the old record back.
    A replay finds the tombstone and changes nothing.

    If both records were in the same session, one enrolment stays under the surviving id:
    the one furthest along (completed, then not completed, enrolled, waitlisted, withdrawn;
    the survivor's own on a tie). The other's attendance and assessments are folded into it
    (a day counts as present if either record says present, else excused if either says
    excused; a unit is competent if either record was assessed competent), its readiness
    checklist and follow-ups move over where the kept one has none, and it ends as withdrawn
    with reason ``merged`` (published as EnrollmentWithdrawn ``other`` with
    ``merged_into_enrollment_id``, or ParticipantLeftWaitlist ``merged``). A freed seat goes to
    the waiting list; a decided outcome is decided again from the folded record and, if it
    changes, published as OutcomeCorrected (and ParticipantCompleted when it becomes completed).
    """
    old = event.participant_id
    new = await surviving_id(session, event.surviving_participant_id) or (
        event.surviving_participant_id
    )
    if old == new or await session.get(MergedParticipant, old) is not None:
        return 0
    session.add(MergedParticipant(id=old, surviving_id=new, merged_on=event.merged_on))
    # Ids merged into the old one earlier now lead straight to the survivor.
    await session.execute(
        update(MergedParticipant)
        .where(MergedParticipant.surviving_id == old)
        .values(surviving_id=new)
    )
    old_row = await session.get(Participant, old)
    new_row = await session.get(Participant, new)
    if old_row is not None:
        if new_row is None:
            # The surviving record's own events may come later: carry the known facts over.
            session.add(
                Participant(
                    id=new,
                    full_name=old_row.full_name,
                    sex=old_row.sex,
                    birth_year=old_row.birth_year,
                    facility_id=old_row.facility_id,
                    status=old_row.status,
                    admission_date=old_row.admission_date,
                    expected_release_date=old_row.expected_release_date,
                    released_on=old_row.released_on,
                    release_kind=old_row.release_kind,
                    absent_from=old_row.absent_from,
                    anonymised_on=old_row.anonymised_on,
                    as_of=old_row.as_of,
                    updated_at=utcnow(),
                )
            )
        await session.delete(old_row)
    survivors = {
        e.session_id: e
        for e in (
            await session.scalars(
                select(Enrollment)
                .where(Enrollment.participant_id == new)
                .execution_options(populate_existing=True)
            )
        ).all()
    }
    moved = 0
    for enrollment in (
        await session.scalars(
            select(Enrollment)
            .where(Enrollment.participant_id == old)
            .order_by(Enrollment.session_id)
            .execution_options(populate_existing=True)
        )
    ).all():
        twin = survivors.get(enrollment.session_id)
        if twin is None:
            enrollment.participant_id = new
            enrollment.updated_at = utcnow()
            moved += 1
            continue
        await _fold_twin_enrollments(
            session, merged=enrollment, surviving=twin, old=old, new=new, on=event.merged_on
        )
        moved += 1
    for model in (ReadinessChecklist, FollowUp):
        result = await session.execute(
            update(model).where(model.participant_id == old).values(participant_id=new)
        )
        moved += result.rowcount or 0  # type: ignore[attr-defined]
    return moved


async def _fold_twin_enrollments(
    session: AsyncSession,
    *,
    merged: Enrollment,
    surviving: Enrollment,
    old: uuid.UUID,
    new: uuid.UUID,
    on: date,
) -> None:
    """One person enrolled twice in one session (under two ids): keep one, end the other."""
    ts = await get_session(session=session, session_id=merged.session_id, lock=True)
    if domain.merged_keeps_its_own(
        EnrollmentStatus(merged.status), EnrollmentStatus(surviving.status)
    ):
        kept, dropped = merged, surviving
        # The session holds one enrolment per person id: the two swap ids (through a free id,
        # so the unique constraint holds at every step) and the dropped one keeps the old id.
        kept.participant_id = uuid.uuid4()
        await session.flush()
        dropped.participant_id = old
        await session.flush()
        kept.participant_id = new
    else:
        kept, dropped = surviving, merged
    kept.updated_at = dropped.updated_at = utcnow()
    await session.flush()
    if dropped.status == EnrollmentStatus.WITHDRAWN.value:
        return  # nothing left to fold: its seat and its record were already given up
    await _fold_history(session, ts, kept=kept, dropped=dropped)
    was_waiting = dropped.status == EnrollmentStatus.WAITLISTED.value
    dropped.status = EnrollmentStatus.WITHDRAWN.value
    dropped.withdrawal_reason = domain.EndReason.MERGED.value
    dropped.withdrawn_on = on
    if was_waiting:
        add_event(
            session,
            ParticipantLeftWaitlist(
                enrollment_id=dropped.id,
                session_id=ts.id,
                participant_id=old,
                reason=domain.EndReason.MERGED.value,
                left_on=on,
            ),
        )
    else:
        add_event(
            session,
            EnrollmentWithdrawn(
                enrollment_id=dropped.id,
                session_id=ts.id,
                participant_id=old,
                reason=WithdrawalReason.OTHER,
                withdrawn_on=on,
                merged_into_enrollment_id=kept.id,
            ),
        )
    if kept.status in DECIDED:
        await _redecide(
            session,
            ts,
            kept,
            reason="Penggabungan data: peserta yang sama tercatat dua kali pada sesi ini.",
            today=on,
        )
    await promote_waitlisted(session=session, ts=ts, today=on)


async def _fold_history(
    session: AsyncSession, ts: TrainingSession, *, kept: Enrollment, dropped: Enrollment
) -> None:
    """Bring the dropped enrolment's attendance, assessments and graduate records to the kept."""
    days = {
        r.day: r
        for r in (
            await session.scalars(
                select(AttendanceRecord).where(AttendanceRecord.enrollment_id == kept.id)
            )
        ).all()
    }
    better: dict[date, dict[uuid.UUID, AttendanceStatus]] = defaultdict(dict)
    for record in (
        await session.scalars(
            select(AttendanceRecord).where(AttendanceRecord.enrollment_id == dropped.id)
        )
    ).all():
        mine = days.get(record.day)
        day = domain.folded_day(
            AttendanceStatus(mine.status) if mine is not None else None,
            AttendanceStatus(record.status),
        )
        if day is not None:
            better[record.day][kept.id] = day
    for day, statuses in sorted(better.items()):
        await _write_day(
            session,
            ts,
            day,
            statuses,
            changed_by=MERGE_ACTOR,
            reason="Penggabungan data warga binaan (dua catatan satu orang).",
            replace_day=False,
        )
    units = {
        a.unit_code: a
        for a in (
            await session.scalars(select(Assessment).where(Assessment.enrollment_id == kept.id))
        ).all()
    }
    for theirs in (
        await session.scalars(select(Assessment).where(Assessment.enrollment_id == dropped.id))
    ).all():
        mine = units.get(theirs.unit_code)
        if (
            domain.folded_result(
                AssessmentResult(mine.result) if mine is not None else None,
                AssessmentResult(theirs.result),
            )
            is None
        ):
            continue
        if mine is None:
            session.add(
                Assessment(
                    id=uuid.uuid4(),
                    session_id=ts.id,
                    enrollment_id=kept.id,
                    unit_code=theirs.unit_code,
                    result=theirs.result,
                    assessor=theirs.assessor,
                    assessed_at=theirs.assessed_at,
                )
            )
        else:
            mine.result, mine.assessor, mine.assessed_at = (
                theirs.result,
                theirs.assessor,
                theirs.assessed_at,
            )
    if await session.get(ReadinessChecklist, kept.id) is None:
        checklist = await session.get(ReadinessChecklist, dropped.id)
        if checklist is not None:
            # The primary key is the enrolment: move the row by copying it.
            session.add(
                ReadinessChecklist(
                    enrollment_id=kept.id,
                    participant_id=kept.participant_id,
                    identity_card=checklist.identity_card,
                    bank_account=checklist.bank_account,
                    nib=checklist.nib,
                    starter_tools=checklist.starter_tools,
                    recorded_by=checklist.recorded_by,
                    recorded_on=checklist.recorded_on,
                    updated_at=utcnow(),
                )
            )
            await session.delete(checklist)
    taken = set(
        (
            await session.scalars(
                select(FollowUp.checkpoint_months).where(FollowUp.enrollment_id == kept.id)
            )
        ).all()
    )
    await session.execute(
        update(FollowUp)
        .where(
            FollowUp.enrollment_id == dropped.id,
            FollowUp.checkpoint_months.not_in(taken or {0}),
        )
        .values(enrollment_id=kept.id, participant_id=kept.participant_id)
    )
    await session.flush()


async def list_facilities(
    *,
    session: AsyncSession,
    code: str | None,
    province: str | None,
    active: bool | None,
    limit: int,
    cursor: str | None,
) -> Page[Facility]:
    query = select(Facility)
    if code is not None:
        query = query.where(Facility.code == code)
    if province is not None:
        query = query.where(Facility.province == province)
    if active is not None:
        query = query.where(Facility.active == active)
    return await paginate(
        session, query, key=Facility.code, tiebreak=Facility.id, cursor=cursor, limit=limit
    )


async def get_facility(*, session: AsyncSession, facility_id: uuid.UUID) -> Facility:
    row = await session.get(Facility, facility_id)
    if row is None:
        raise NotFound("Lapas/rutan tidak dikenal di layanan pelatihan.")
    return row


async def list_participants(
    *,
    session: AsyncSession,
    facility_id: uuid.UUID | None,
    status: ParticipantStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[Participant]:
    query = select(Participant)
    if facility_id is not None:
        query = query.where(Participant.facility_id == facility_id)
    if status is not None:
        query = query.where(Participant.status == status.value)
    return await paginate(
        session,
        query,
        key=Participant.full_name,
        tiebreak=Participant.id,
        cursor=cursor,
        limit=limit,
    )


async def get_participant(*, session: AsyncSession, participant_id: uuid.UUID) -> Participant:
    row = await session.get(Participant, participant_id)
    if row is None:
        raise NotFound("Peserta tidak dikenal di layanan pelatihan.")
    return row


# --- programs ------------------------------------------------------------------------------


def _program_published(program: Program) -> ProgramPublished:
    return ProgramPublished(
        program_id=program.id,
        program_version=program.version,
        code=program.code,
        title=program.title,
        sector=program.sector,
        partner=program.partner,
        days=program.days,
        hours=program.hours,
        min_attendance_share=program.min_attendance_share,
        competency_units=[CompetencyUnit(**u) for u in program.competency_units],
    )


def _apply_rules(program: Program, data: ProgramCreate | ProgramUpdate) -> None:
    program.title = data.title
    program.sector = data.sector
    program.partner = data.partner
    program.days = data.days
    program.hours = data.hours
    program.min_attendance_share = data.min_attendance_share
    program.competency_units = [u.model_dump() for u in data.competency_units]


async def create_program(*, session: AsyncSession, data: ProgramCreate) -> Program:
    if await session.scalar(select(Program.id).where(Program.code == data.code)) is not None:
        raise Conflict(
            f"Kode program '{data.code}' sudah dipakai.",
            errors=[{"field": "code", "message": "kode program sudah dipakai"}],
        )
    now = utcnow()
    program = Program(id=uuid.uuid4(), code=data.code, version=1, created_at=now, updated_at=now)
    _apply_rules(program, data)
    session.add(program)
    add_event(session, _program_published(program))
    return program


async def publish_program_version(
    *, session: AsyncSession, program_id: uuid.UUID, data: ProgramUpdate
) -> Program:
    """A changed design is a new version; sessions already planned keep the rules they copied."""
    program = await session.scalar(
        select(Program).where(Program.id == program_id).with_for_update()
    )
    if program is None:
        raise NotFound("Program tidak ditemukan.")
    program.version += 1
    program.updated_at = utcnow()
    _apply_rules(program, data)
    add_event(session, _program_published(program))
    return program


async def get_program(*, session: AsyncSession, program_id: uuid.UUID) -> Program:
    program = await session.get(Program, program_id)
    if program is None:
        raise NotFound("Program tidak ditemukan.")
    return program


async def list_programs(
    *, session: AsyncSession, code: str | None, sector: str | None, limit: int, cursor: str | None
) -> Page[Program]:
    query = select(Program)
    if code is not None:
        query = query.where(Program.code == code)
    if sector is not None:
        query = query.where(Program.sector == sector)
    return await paginate(
        session, query, key=Program.code, tiebreak=Program.id, cursor=cursor, limit=limit
    )


# --- sessions ------------------------------------------------------------------------------


async def schedule_session(*, session: AsyncSession, data: SessionCreate) -> TrainingSession:
    try:
        domain.check_session_dates(data.start_date, data.end_date)
    except RuleBroken as rule:
        raise _refused(rule) from rule
    program = await session.get(Program, data.program_id)
    if program is None:
        raise _invalid("program_id", "Program tidak ditemukan.")
    facility = await session.get(Facility, data.facility_id)
    if facility is None:
        raise _invalid("facility_id", "Lapas/rutan belum dikenal (belum diterima dari registri).")
    if not facility.active:
        raise _invalid("facility_id", f"{facility.name} tidak aktif.")
    now = utcnow()
    ts = TrainingSession(
        id=uuid.uuid4(),
        program_id=program.id,
        program_version=program.version,
        program_code=program.code,
        program_title=program.title,
        sector=program.sector,
        partner=program.partner,
        hours=program.hours,
        min_attendance_share=program.min_attendance_share,
        competency_units=[dict(u) for u in program.competency_units],
        facility_id=facility.id,
        start_date=data.start_date,
        end_date=data.end_date,
        capacity=data.capacity,
        status=SessionStatus.PLANNED.value,
        instructors=[i.model_dump() for i in data.instructors],
        created_at=now,
        updated_at=now,
    )
    session.add(ts)
    add_event(
        session,
        SessionScheduled(
            session_id=ts.id,
            program_id=ts.program_id,
            program_version=ts.program_version,
            facility_id=ts.facility_id,
            start_date=ts.start_date,
            end_date=ts.end_date,
            capacity=ts.capacity,
        ),
    )
    return ts


async def get_session(
    *, session: AsyncSession, session_id: uuid.UUID, lock: bool = False
) -> TrainingSession:
    """A session; with ``lock`` its row is held until commit, so its writers take turns."""
    query: Select[TrainingSession] = select(TrainingSession).where(TrainingSession.id == session_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    ts = await session.scalar(query)
    if ts is None:
        raise NotFound("Sesi pelatihan tidak ditemukan.")
    return ts


async def list_sessions(
    *,
    session: AsyncSession,
    facility_id: uuid.UUID | None,
    program_id: uuid.UUID | None,
    status: SessionStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[TrainingSession]:
    query = select(TrainingSession)
    if facility_id is not None:
        query = query.where(TrainingSession.facility_id == facility_id)
    if program_id is not None:
        query = query.where(TrainingSession.program_id == program_id)
    if status is not None:
        query = query.where(TrainingSession.status == status.value)
    return await paginate(
        session,
        query,
        key=TrainingSession.created_at,
        tiebreak=TrainingSession.id,
        cursor=cursor,
        limit=limit,
        parse_key=parse_utc,
    )


async def enrollments_of(
    *, session: AsyncSession, session_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[EnrollmentView]]:
    """Enrolments of the given sessions with each participant's name, in enrolment order."""
    found: dict[uuid.UUID, list[EnrollmentView]] = {sid: [] for sid in session_ids}
    if not session_ids:
        return found
    rows = await session.execute(
        select(Enrollment, Participant.full_name)
        .outerjoin(Participant, Participant.id == Enrollment.participant_id)
        .where(Enrollment.session_id.in_(list(session_ids)))
        .order_by(Enrollment.created_at, Enrollment.id)
        .execution_options(populate_existing=True)
    )
    for enrollment, name in rows:
        found[enrollment.session_id].append((enrollment, name))
    return found


@dataclass(frozen=True)
class _Nomination:
    """What enrolling a batch in a session needs to know, read with the session locked."""

    people: dict[uuid.UUID, Participant]
    busy: dict[uuid.UUID, str]  # in (or queued for) another session on overlapping dates
    already: set[uuid.UUID]  # people of the batch with any enrolment in this session
    taken: int  # seats of this session held (enrolled and beyond, not queued or withdrawn)
    queued: int  # this session's waiting list


async def _nomination(
    session: AsyncSession, ts: TrainingSession, participant_ids: Sequence[uuid.UUID]
) -> _Nomination:
    """The people of the batch with what the rules ask about them, in one query.

    It was three round trips: the session's every enrolment (to count seats), the people, and
    their other sessions. The counts come from subqueries of this statement, which runs after
    the session's row is locked (its snapshot is taken then, so no seat is missed). When none
    of the batch is known the counts do not matter: every one of them is refused as unknown.
    """
    here = aliased(Enrollment)
    seats = select(func.count()).where(
        Enrollment.session_id == ts.id,
        Enrollment.status.not_in(
            [EnrollmentStatus.WITHDRAWN.value, EnrollmentStatus.WAITLISTED.value]
        ),
    )
    queue = select(func.count()).where(
        Enrollment.session_id == ts.id,
        Enrollment.status == EnrollmentStatus.WAITLISTED.value,
    )
    other = aliased(Enrollment)
    rows = await session.execute(
        select(
            Participant,
            TrainingSession,
            here.id,
            seats.scalar_subquery(),
            queue.scalar_subquery(),
        )
        .outerjoin(here, and_(here.participant_id == Participant.id, here.session_id == ts.id))
        .outerjoin(
            other,
            and_(
                other.participant_id == Participant.id,
                other.session_id != ts.id,
                other.status != EnrollmentStatus.WITHDRAWN.value,
            ),
        )
        .outerjoin(
            TrainingSession,
            and_(
                TrainingSession.id == other.session_id,
                TrainingSession.status != SessionStatus.CANCELLED.value,
                TrainingSession.start_date <= ts.end_date,
                TrainingSession.end_date >= ts.start_date,
            ),
        )
        .where(Participant.id.in_(set(participant_ids)))
    )
    people: dict[uuid.UUID, Participant] = {}
    busy: dict[uuid.UUID, str] = {}
    already: set[uuid.UUID] = set()
    taken = queued = 0
    for person, elsewhere, enrolled_here, seats_held, waiting in rows:
        taken, queued = int(seats_held or 0), int(waiting or 0)  # the same on every row
        people[person.id] = person
        if enrolled_here is not None:
            already.add(person.id)
        if elsewhere is not None:
            busy[person.id] = (
                f"{elsewhere.program_code} {elsewhere.start_date.isoformat()} s.d. "
                f"{elsewhere.end_date.isoformat()}, sesi {elsewhere.id}"
            )
    return _Nomination(people, busy, already, taken=taken, queued=queued)


async def enrol(
    *,
    session: AsyncSession,
    session_id: uuid.UUID,
    participant_ids: list[uuid.UUID],
    today: date,
    data: EnrollmentCreate | None = None,
    principal: Principal | None = None,
) -> list[EnrollmentView]:
    """Enrol the whole list or nobody (every problem is reported at once).

    With ``data.waitlist`` those beyond the capacity join the waiting list instead of being
    refused. ``data.overrides`` let a training administrator admit someone outside the release
    window, with a reason kept on the enrolment.
    """
    overrides = {o.participant_id: o.reason for o in data.overrides} if data else {}
    waitlist = bool(data and data.waitlist)
    for i, pid in enumerate(overrides):
        if pid not in participant_ids:
            raise _invalid(
                f"overrides.{i}.participant_id",
                "Pengecualian untuk peserta yang tidak didaftarkan.",
            )
    if overrides and (principal is None or not principal.has_role(Role.TRAINING_ADMIN)):
        raise Forbidden(
            "Pengecualian aturan masa bebas hanya dapat diberikan oleh admin pelatihan.",
            errors=[{"field": "overrides", "message": "perlu peran training_admin"}],
        )
    ts = await get_session(session=session, session_id=session_id, lock=True)
    nomination = await _nomination(session, ts, participant_ids)
    people, taken, queued = nomination.people, nomination.taken, nomination.queued
    known = {
        pid: ParticipantFacts(
            pid,
            ParticipantStatus(p.status),
            p.facility_id,
            p.expected_release_date,
            consented=p.anonymised_on is None,
        )
        for pid, p in people.items()
    }
    try:
        problems = domain.enrollment_problems(
            session_status=SessionStatus(ts.status),
            session_facility_id=ts.facility_id,
            capacity=ts.capacity,
            seats_taken=taken,
            already_enrolled=nomination.already,
            candidates=participant_ids,
            known=known,
            session_start=ts.start_date,
            overridden=overrides,
            busy=nomination.busy,
            waitlist=waitlist,
        )
    except RuleBroken as rule:
        raise _refused(rule) from rule
    if problems:
        errors = [
            {"field": p.field, "participant_id": str(p.participant_id), "message": p.message}
            for p in problems
        ]
        conflict_only = all(p.conflict for p in problems)
        names = ", ".join(
            people[p.participant_id].full_name or str(p.participant_id)
            if p.participant_id in people
            else str(p.participant_id)
            for p in problems
        )
        raise Problem(
            f"Pendaftaran ditolak; tidak ada peserta yang didaftarkan ({len(problems)} masalah: "
            f"{names}).",
            status=409 if conflict_only else 422,
            slug="enrollment-refused",
            title="Pendaftaran ditolak",
            errors=errors,
        )
    # Someone already queued keeps their turn: newcomers go behind the queue.
    _, waiting = domain.split_by_capacity(
        participant_ids, capacity=ts.capacity, seats_taken=max(taken, ts.capacity * bool(queued))
    )
    now = utcnow()
    created: list[EnrollmentView] = []
    for n, pid in enumerate(participant_ids):
        on_list = pid in waiting
        enrollment = Enrollment(
            id=uuid.uuid4(),
            session_id=ts.id,
            participant_id=pid,
            status=(EnrollmentStatus.WAITLISTED if on_list else EnrollmentStatus.ENROLLED).value,
            enrolled_on=today,
            override_reason=overrides.get(pid),
            override_by=principal.subject if pid in overrides and principal else None,
            # Distinct, increasing times keep the queue in the order given.
            created_at=now + timedelta(microseconds=n),
            updated_at=now,
        )
        session.add(enrollment)
        if on_list:
            queued += 1
            add_event(
                session,
                ParticipantWaitlisted(
                    enrollment_id=enrollment.id,
                    session_id=ts.id,
                    participant_id=pid,
                    waitlisted_on=today,
                    position=queued,
                ),
            )
        else:
            add_event(
                session,
                ParticipantEnrolled(
                    enrollment_id=enrollment.id,
                    session_id=ts.id,
                    participant_id=pid,
                    enrolled_on=today,
                ),
            )
        created.append((enrollment, people[pid].full_name))
    ts.updated_at = now
    return created


async def open_session(
    *, session: AsyncSession, session_id: uuid.UUID, today: date
) -> TrainingSession:
    """A planned session starts taking nominations (SessionOpened)."""
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_can_open(SessionStatus(ts.status))
    except RuleBroken as rule:
        raise _refused(rule) from rule
    ts.status = SessionStatus.OPEN.value
    ts.opened_on = today
    ts.updated_at = utcnow()
    add_event(session, SessionOpened(session_id=ts.id, opened_on=today))
    return ts


async def start_session(
    *, session: AsyncSession, session_id: uuid.UUID, today: date
) -> TrainingSession:
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_can_start(SessionStatus(ts.status))
    except RuleBroken as rule:
        raise _refused(rule) from rule
    ts.status = SessionStatus.RUNNING.value
    ts.started_on = today
    ts.updated_at = utcnow()
    add_event(session, SessionStarted(session_id=ts.id, started_on=today))
    return ts


async def cancel_session(
    *, session: AsyncSession, session_id: uuid.UUID, reason: str, today: date
) -> TrainingSession:
    """Cancel a planned or running session: every live enrolment and queue entry ends
    (reason ``other``), then SessionCancelled with the reason."""
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_can_cancel(SessionStatus(ts.status))
    except RuleBroken as rule:
        raise _refused(rule) from rule
    live = (
        await session.scalars(
            select(Enrollment)
            .where(Enrollment.session_id == ts.id, Enrollment.status.in_(LIVE_STATUSES))
            .order_by(Enrollment.created_at, Enrollment.id)
            .execution_options(populate_existing=True)
        )
    ).all()
    for enrollment in live:
        _end_enrollment(session, enrollment, reason=WithdrawalReason.OTHER, on=today)
    ts.status = SessionStatus.CANCELLED.value
    ts.cancelled_on = today
    ts.cancellation_reason = reason
    ts.updated_at = utcnow()
    add_event(session, SessionCancelled(session_id=ts.id, reason=reason))
    return ts


async def _enrollments_by_participant(
    session: AsyncSession, session_id: uuid.UUID
) -> dict[uuid.UUID, Enrollment]:
    rows = await session.scalars(select(Enrollment).where(Enrollment.session_id == session_id))
    return {e.participant_id: e for e in rows.all()}


async def _write_day(
    session: AsyncSession,
    ts: TrainingSession,
    day: date,
    statuses: dict[uuid.UUID, AttendanceStatus],
    *,
    changed_by: str,
    reason: str | None,
    replace_day: bool,
) -> set[uuid.UUID]:
    """Set the day's statuses (per enrolment id) and keep a history row for each change.

    With ``replace_day`` the day's sheet is replaced as a whole (enrolments left out lose their
    record); otherwise only the given enrolments change. Returns the enrolments that changed.
    """
    current = {
        r.enrollment_id: r
        for r in (
            await session.scalars(
                select(AttendanceRecord).where(
                    AttendanceRecord.session_id == ts.id, AttendanceRecord.day == day
                )
            )
        ).all()
    }
    now = utcnow()
    changed: set[uuid.UUID] = set()
    targets = set(statuses) | (set(current) if replace_day else set())
    for enrollment_id in sorted(targets):
        row = current.get(enrollment_id)
        before = row.status if row is not None else None
        after = statuses[enrollment_id].value if enrollment_id in statuses else None
        if before == after:
            continue
        changed.add(enrollment_id)
        session.add(
            AttendanceChange(
                id=uuid.uuid4(),
                session_id=ts.id,
                enrollment_id=enrollment_id,
                day=day,
                previous_status=before,
                status=after,
                changed_by=changed_by,
                reason=reason,
                changed_at=now,
            )
        )
        if after is None:
            assert row is not None
            await session.delete(row)
        elif row is None:
            session.add(
                AttendanceRecord(
                    id=uuid.uuid4(),
                    session_id=ts.id,
                    enrollment_id=enrollment_id,
                    day=day,
                    status=after,
                    recorded_at=now,
                )
            )
        else:
            row.status = after
            row.recorded_at = now
    return changed


async def record_attendance(
    *,
    session: AsyncSession,
    session_id: uuid.UUID,
    sheet: AttendanceSheet,
    changed_by: str = "unknown",
) -> int:
    """Replace the day's attendance sheet with the one given (corrections re-send the day).

    Every change is kept in the attendance history with who made it and when. A sheet naming
    someone who had left the course by that day (``domain.attendance_refusal``) is refused as a
    whole (409), every such person named, and nothing of it is written.
    """
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_running(SessionStatus(ts.status), "absensi")
        domain.check_attendance_date(sheet.date, ts.start_date, ts.end_date)
    except RuleBroken as rule:
        raise _refused(rule) from rule
    enrolled = await _enrollments_by_participant(session, ts.id)
    seen: set[uuid.UUID] = set()
    refused: list[tuple[int, Enrollment, str]] = []
    for i, record in enumerate(sheet.records):
        field = f"records.{i}.participant_id"
        if record.participant_id in seen:
            raise _invalid(field, "Peserta disebut lebih dari sekali untuk tanggal ini.")
        found = enrolled.get(record.participant_id)
        if found is None or found.status == EnrollmentStatus.WAITLISTED.value:
            raise _invalid(field, "Peserta tidak terdaftar pada sesi ini.")
        seen.add(record.participant_id)
        refusal = domain.attendance_refusal(
            day=sheet.date,
            enrollment_status=EnrollmentStatus(found.status),
            withdrawn_on=found.withdrawn_on,
            withdrawal_reason=(
                domain.EndReason(found.withdrawal_reason) if found.withdrawal_reason else None
            ),
        )
        if refusal is not None:
            refused.append((i, found, refusal))
    if refused:
        raise await _attendance_refused(session, sheet.date, refused)
    await _write_day(
        session,
        ts,
        sheet.date,
        {enrolled[r.participant_id].id: r.status for r in sheet.records},
        changed_by=changed_by,
        reason=None,
        replace_day=True,
    )
    ts.updated_at = utcnow()
    return len(sheet.records)


async def _attendance_refused(
    session: AsyncSession, day: date, refused: Sequence[tuple[int, Enrollment, str]]
) -> Problem:
    """409 for a sheet naming people who had left the course by ``day``: the whole sheet is
    refused, each of them named in ``errors`` with the day, and by name in the ``detail``."""
    names = await _names(session, [e for _, e, _ in refused])
    errors = [
        {
            "field": f"records.{i}.participant_id",
            "message": message,
            "participant_id": str(e.participant_id),
            "enrollment_id": str(e.id),
            "date": day.isoformat(),
            "withdrawn_on": e.withdrawn_on.isoformat() if e.withdrawn_on else None,
            "withdrawal_reason": e.withdrawal_reason,
        }
        for i, e, message in refused
    ]
    who = ", ".join(
        f"{names.get(e.participant_id) or e.participant_id}"
        + (f" (keluar {e.withdrawn_on.isoformat()})" if e.withdrawn_on else "")
        for _, e, _ in refused
    )
    return Conflict(
        f"Absensi tanggal {day.isoformat()} ditolak; tidak ada yang disimpan. "
        f"{len(refused)} peserta sudah keluar dari sesi pada atau sebelum tanggal itu: {who}.",
        slug="attendance-refused",
        title="Absensi ditolak",
        errors=errors,
    )


async def attendance_history(
    *, session: AsyncSession, session_id: uuid.UUID
) -> list[tuple[AttendanceChange, uuid.UUID]]:
    """Every attendance change of a session, oldest first, with the participant it concerns."""
    ts = await get_session(session=session, session_id=session_id)
    rows = await session.execute(
        select(AttendanceChange, Enrollment.participant_id)
        .join(Enrollment, Enrollment.id == AttendanceChange.enrollment_id)
        .where(AttendanceChange.session_id == ts.id)
        .order_by(AttendanceChange.changed_at, AttendanceChange.day, AttendanceChange.id)
    )
    return [(change, pid) for change, pid in rows]


async def record_assessments(
    *, session: AsyncSession, session_id: uuid.UUID, sheet: AssessmentSheet
) -> int:
    """Record results; a unit assessed again keeps only its latest result."""
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_running(SessionStatus(ts.status), "penilaian")
    except RuleBroken as rule:
        raise _refused(rule) from rule
    unit_codes = {u["code"] for u in ts.competency_units}
    enrolled = await _enrollments_by_participant(session, ts.id)
    seen: set[tuple[uuid.UUID, str]] = set()
    for i, result in enumerate(sheet.results):
        enrollment = enrolled.get(result.participant_id)
        if enrollment is None or enrollment.status != EnrollmentStatus.ENROLLED.value:
            raise _invalid(
                f"results.{i}.participant_id", "Peserta tidak terdaftar aktif pada sesi ini."
            )
        if result.unit_code not in unit_codes:
            raise _invalid(
                f"results.{i}.unit_code",
                f"Unit kompetensi '{result.unit_code}' bukan bagian dari program versi "
                f"{ts.program_version} sesi ini.",
            )
        if (result.participant_id, result.unit_code) in seen:
            raise _invalid(
                f"results.{i}", "Hasil untuk peserta dan unit ini disebut lebih dari sekali."
            )
        seen.add((result.participant_id, result.unit_code))
    ids = [enrolled[r.participant_id].id for r in sheet.results]
    current = {
        (a.enrollment_id, a.unit_code): a
        for a in (
            await session.scalars(select(Assessment).where(Assessment.enrollment_id.in_(set(ids))))
        ).all()
    }
    now = utcnow()
    for result in sheet.results:
        enrollment_id = enrolled[result.participant_id].id
        row = current.get((enrollment_id, result.unit_code))
        if row is None:
            row = Assessment(
                id=uuid.uuid4(),
                session_id=ts.id,
                enrollment_id=enrollment_id,
                unit_code=result.unit_code,
            )
            session.add(row)
        row.result = result.result.value
        row.assessor = sheet.assessor
        row.assessed_at = now
    ts.updated_at = now
    return len(sheet.results)


async def _decide(
    session: AsyncSession, ts: TrainingSession, enrollments: Sequence[Enrollment]
) -> dict[uuid.UUID, domain.Outcome]:
    """Each enrolment's outcome from the session's rules and what is recorded now."""
    ids = [e.id for e in enrollments]
    attendance: dict[uuid.UUID, list[AttendanceStatus]] = defaultdict(list)
    results: dict[uuid.UUID, dict[str, AssessmentResult]] = defaultdict(dict)
    if ids:
        for enrollment_id, status in await session.execute(
            select(AttendanceRecord.enrollment_id, AttendanceRecord.status).where(
                AttendanceRecord.session_id == ts.id, AttendanceRecord.enrollment_id.in_(ids)
            )
        ):
            attendance[enrollment_id].append(AttendanceStatus(status))
        for enrollment_id, unit_code, result in await session.execute(
            select(Assessment.enrollment_id, Assessment.unit_code, Assessment.result).where(
                Assessment.enrollment_id.in_(ids)
            )
        ):
            results[enrollment_id][unit_code] = AssessmentResult(result)
    days = domain.session_days(ts.start_date, ts.end_date)
    unit_codes = [u["code"] for u in ts.competency_units]
    return {
        e.id: domain.completion_outcome(
            days=days,
            attendance=attendance[e.id],
            min_attendance_share=ts.min_attendance_share,
            unit_codes=unit_codes,
            results=results[e.id],
        )
        for e in enrollments
    }


async def _names(session: AsyncSession, enrollments: Sequence[Enrollment]) -> dict[uuid.UUID, str]:
    if not enrollments:
        return {}
    return dict(
        (
            await session.execute(
                select(Participant.id, Participant.full_name).where(
                    Participant.id.in_([e.participant_id for e in enrollments])
                )
            )
        ).all()
    )


def _completed_event(
    ts: TrainingSession, enrollment: Enrollment, name: str, share: float
) -> ParticipantCompleted:
    return ParticipantCompleted(
        enrollment_id=enrollment.id,
        session_id=ts.id,
        participant_id=enrollment.participant_id,
        participant_name=name,
        program_id=ts.program_id,
        program_code=ts.program_code,
        program_title=ts.program_title,
        sector=ts.sector,
        partner=ts.partner,
        competency_units=[CompetencyUnit(**u) for u in ts.competency_units],
        hours=ts.hours,
        start_date=ts.start_date,
        end_date=ts.end_date,
        attendance_share=share,
    )


async def complete_session(
    *, session: AsyncSession, session_id: uuid.UUID, today: date
) -> TrainingSession:
    """Close the session: an outcome for every participant still enrolled, then SessionCompleted.

    Whoever is still on the waiting list leaves it (the course is over).
    """
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_running(SessionStatus(ts.status), "penutupan")
    except RuleBroken as rule:
        raise _refused(rule) from rule
    live = (
        await session.scalars(
            select(Enrollment)
            .where(Enrollment.session_id == ts.id, Enrollment.status.in_(LIVE_STATUSES))
            .order_by(Enrollment.created_at, Enrollment.id)
            .execution_options(populate_existing=True)
        )
    ).all()
    for enrollment in live:
        if enrollment.status == EnrollmentStatus.WAITLISTED.value:
            enrollment.status = EnrollmentStatus.WITHDRAWN.value
            enrollment.withdrawal_reason = WithdrawalReason.OTHER.value
            enrollment.withdrawn_on = today
            add_event(
                session,
                ParticipantLeftWaitlist(
                    enrollment_id=enrollment.id,
                    session_id=ts.id,
                    participant_id=enrollment.participant_id,
                    reason="session_completed",
                    left_on=today,
                ),
            )
    enrollments = [e for e in live if e.status == EnrollmentStatus.ENROLLED.value]
    outcomes = await _decide(session, ts, enrollments)
    names = await _names(session, enrollments)
    now = utcnow()
    completed = not_completed = 0
    for enrollment in enrollments:
        outcome = outcomes[enrollment.id]
        enrollment.attendance_share = outcome.attendance_share
        enrollment.updated_at = now
        if outcome.completed:
            completed += 1
            enrollment.status = EnrollmentStatus.COMPLETED.value
            add_event(
                session,
                _completed_event(
                    ts,
                    enrollment,
                    names.get(enrollment.participant_id, ""),
                    outcome.attendance_share,
                ),
            )
        else:
            assert outcome.reason is not None
            not_completed += 1
            enrollment.status = EnrollmentStatus.NOT_COMPLETED.value
            enrollment.not_completed_reason = outcome.reason.value
            add_event(
                session,
                ParticipantNotCompleted(
                    enrollment_id=enrollment.id,
                    session_id=ts.id,
                    participant_id=enrollment.participant_id,
                    reason=outcome.reason,
                    attendance_share=outcome.attendance_share,
                ),
            )
    ts.status = SessionStatus.COMPLETED.value
    ts.completed_on = today
    ts.updated_at = now
    add_event(
        session,
        SessionCompleted(
            session_id=ts.id,
            completed_on=today,
            completed_count=completed,
            not_completed_count=not_completed,
        ),
    )
    return ts


# --- corrections after completion ----------------------------------------------------------

DECIDED = (EnrollmentStatus.COMPLETED.value, EnrollmentStatus.NOT_COMPLETED.value)


async def correct_outcomes(
    *,
    session: AsyncSession,
    session_id: uuid.UUID,
    data: CorrectionCreate,
    changed_by: str,
    today: date,
) -> list[tuple[Enrollment, EnrollmentOutcome, EnrollmentOutcome]]:
    """The documented way to change a completed session: fix attendance or assessments, with a
    reason, and decide the outcomes again. Each changed outcome publishes OutcomeCorrected;
    one that becomes ``completed`` also publishes ParticipantCompleted (for the certificate).
    Returns (enrolment, previous outcome, new outcome) for every outcome that changed.
    """
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_correctable(SessionStatus(ts.status))
    except RuleBroken as rule:
        raise _refused(rule) from rule
    by_participant = await _enrollments_by_participant(session, ts.id)

    def decided(field: str, pid: uuid.UUID) -> Enrollment:
        found = by_participant.get(pid)
        if found is None or found.status not in DECIDED:
            raise _invalid(field, "Peserta tidak memiliki hasil akhir pada sesi ini.")
        return found

    days: dict[date, dict[uuid.UUID, AttendanceStatus]] = defaultdict(dict)
    touched: set[uuid.UUID] = set()
    for i, a in enumerate(data.attendance):
        enrollment = decided(f"attendance.{i}.participant_id", a.participant_id)
        try:
            domain.check_attendance_date(a.date, ts.start_date, ts.end_date)
        except RuleBroken:
            raise _invalid(
                f"attendance.{i}.date", f"Tanggal {a.date.isoformat()} di luar jadwal sesi."
            ) from None
        days[a.date][enrollment.id] = a.status
        touched.add(enrollment.id)
    unit_codes = {u["code"] for u in ts.competency_units}
    for i, r in enumerate(data.assessments):
        enrollment = decided(f"assessments.{i}.participant_id", r.participant_id)
        if r.unit_code not in unit_codes:
            raise _invalid(
                f"assessments.{i}.unit_code",
                f"Unit kompetensi '{r.unit_code}' bukan bagian dari program sesi ini.",
            )
        touched.add(enrollment.id)
    if data.assessments and not data.assessor:
        raise _invalid("assessor", "Nama penilai wajib diisi untuk koreksi penilaian.")
    for day, statuses in sorted(days.items()):
        await _write_day(
            session,
            ts,
            day,
            statuses,
            changed_by=changed_by,
            reason=data.reason,
            replace_day=False,
        )
    now = utcnow()
    for r in data.assessments:
        enrollment_id = by_participant[r.participant_id].id
        row = await session.scalar(
            select(Assessment).where(
                Assessment.enrollment_id == enrollment_id, Assessment.unit_code == r.unit_code
            )
        )
        if row is None:
            row = Assessment(
                id=uuid.uuid4(),
                session_id=ts.id,
                enrollment_id=enrollment_id,
                unit_code=r.unit_code,
            )
            session.add(row)
        row.result = r.result.value
        row.assessor = data.assessor or ""
        row.assessed_at = now
    await session.flush()
    enrollments = [e for e in by_participant.values() if e.id in touched]
    changed: list[tuple[Enrollment, EnrollmentOutcome, EnrollmentOutcome]] = []
    for enrollment in sorted(enrollments, key=lambda e: (e.created_at, e.id)):
        change = await _redecide(session, ts, enrollment, reason=data.reason, today=today)
        if change is not None:
            changed.append((enrollment, *change))
    ts.updated_at = now
    return changed


async def _redecide(
    session: AsyncSession,
    ts: TrainingSession,
    enrollment: Enrollment,
    *,
    reason: str,
    today: date,
) -> tuple[EnrollmentOutcome, EnrollmentOutcome] | None:
    """Decide a decided enrolment's outcome again from what is recorded now.

    If the outcome, share or reason changed, OutcomeCorrected is published (and, when it
    becomes completed, ParticipantCompleted for the certificate); returns (previous, new).
    """
    await session.flush()
    outcome = (await _decide(session, ts, [enrollment]))[enrollment.id]
    previous = (
        EnrollmentOutcome.COMPLETED
        if enrollment.status == EnrollmentStatus.COMPLETED.value
        else EnrollmentOutcome.NOT_COMPLETED
    )
    new = domain.outcome_of(outcome)
    reason_now = outcome.reason.value if outcome.reason else None
    if (
        new == previous
        and enrollment.attendance_share == outcome.attendance_share
        and enrollment.not_completed_reason == reason_now
    ):
        return None
    enrollment.status = new.value
    enrollment.attendance_share = outcome.attendance_share
    enrollment.not_completed_reason = reason_now
    enrollment.updated_at = utcnow()
    add_event(
        session,
        OutcomeCorrected(
            enrollment_id=enrollment.id,
            session_id=ts.id,
            participant_id=enrollment.participant_id,
            previous_outcome=previous,
            outcome=new,
            not_completed_reason=outcome.reason,
            attendance_share=outcome.attendance_share,
            reason=reason,
            corrected_on=today,
        ),
    )
    if new == EnrollmentOutcome.COMPLETED and previous != new:
        names = await _names(session, [enrollment])
        add_event(
            session,
            _completed_event(
                ts, enrollment, names.get(enrollment.participant_id, ""), outcome.attendance_share
            ),
        )
    return previous, new


# --- graduates: readiness before release, follow-ups after it -------------------------------


async def _graduate(
    session: AsyncSession, enrollment_id: uuid.UUID
) -> tuple[Enrollment, Participant | None]:
    enrollment = await session.get(Enrollment, enrollment_id)
    if enrollment is None:
        raise NotFound("Pendaftaran tidak ditemukan.")
    try:
        domain.check_graduate(EnrollmentStatus(enrollment.status))
    except RuleBroken as rule:
        raise _refused(rule) from rule
    return enrollment, await session.get(Participant, enrollment.participant_id)


async def get_readiness(*, session: AsyncSession, enrollment_id: uuid.UUID) -> ReadinessChecklist:
    row = await session.get(ReadinessChecklist, enrollment_id)
    if row is None:
        raise NotFound("Daftar periksa kesiapan belum dicatat.")
    return row


async def record_readiness(
    *,
    session: AsyncSession,
    enrollment_id: uuid.UUID,
    data: ReadinessIn,
    recorded_by: str,
    today: date,
) -> ReadinessChecklist:
    """Set a graduate's checklist; ReadinessRecorded is published when anything changed."""
    enrollment, _ = await _graduate(session, enrollment_id)
    row = await session.get(ReadinessChecklist, enrollment_id)
    values = data.model_dump()
    if row is not None and all(getattr(row, k) == v for k, v in values.items()):
        return row
    if row is None:
        row = ReadinessChecklist(enrollment_id=enrollment.id)
        session.add(row)
    row.participant_id = enrollment.participant_id
    for key, value in values.items():
        setattr(row, key, value)
    row.recorded_by = recorded_by
    row.recorded_on = today
    row.updated_at = utcnow()
    add_event(
        session,
        ReadinessRecorded(
            enrollment_id=enrollment.id,
            session_id=enrollment.session_id,
            participant_id=enrollment.participant_id,
            recorded_on=today,
            **values,
        ),
    )
    return row


async def list_enrollments(
    *,
    session: AsyncSession,
    status: EnrollmentStatus | None,
    participant_id: uuid.UUID | None,
    session_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> tuple[Page[Enrollment], dict[uuid.UUID, str]]:
    """Enrolments across sessions (e.g. every graduate, for field officers), with names."""
    query = select(Enrollment)
    if status is not None:
        query = query.where(Enrollment.status == status.value)
    if participant_id is not None:
        query = query.where(Enrollment.participant_id == participant_id)
    if session_id is not None:
        query = query.where(Enrollment.session_id == session_id)
    page = await paginate(
        session,
        query,
        key=Enrollment.created_at,
        tiebreak=Enrollment.id,
        cursor=cursor,
        limit=limit,
        parse_key=parse_utc,
    )
    return page, await _names(session, page.rows)


async def list_follow_ups(*, session: AsyncSession, enrollment_id: uuid.UUID) -> list[FollowUp]:
    if await session.get(Enrollment, enrollment_id) is None:
        raise NotFound("Pendaftaran tidak ditemukan.")
    rows = await session.scalars(
        select(FollowUp)
        .where(FollowUp.enrollment_id == enrollment_id)
        .order_by(FollowUp.checkpoint_months)
    )
    return list(rows.all())


async def record_follow_up(
    *,
    session: AsyncSession,
    enrollment_id: uuid.UUID,
    checkpoint_months: int,
    data: FollowUpIn,
    recorded_by: str,
) -> FollowUp:
    """A field officer's follow-up; sending the same checkpoint again corrects it.

    FollowUpRecorded is published when the record is new or changed.
    """
    enrollment, participant = await _graduate(session, enrollment_id)
    try:
        domain.check_follow_up(
            checkpoint_months=checkpoint_months,
            released_on=participant.released_on if participant else None,
            recorded_on=data.recorded_on,
        )
    except RuleBroken as rule:
        raise _refused(rule) from rule
    row = await session.scalar(
        select(FollowUp).where(
            FollowUp.enrollment_id == enrollment.id,
            FollowUp.checkpoint_months == checkpoint_months,
        )
    )
    if (
        row is not None
        and row.situation == data.situation.value
        and row.recorded_on == data.recorded_on
    ):
        return row
    if row is None:
        row = FollowUp(
            id=uuid.uuid4(), enrollment_id=enrollment.id, checkpoint_months=checkpoint_months
        )
        session.add(row)
    row.participant_id = enrollment.participant_id
    row.situation = data.situation.value
    row.recorded_on = data.recorded_on
    row.recorded_by = recorded_by
    row.updated_at = utcnow()
    add_event(
        session,
        FollowUpRecorded(
            enrollment_id=enrollment.id,
            session_id=enrollment.session_id,
            participant_id=enrollment.participant_id,
            checkpoint_months=checkpoint_months,
            situation=FollowUpSituation(data.situation),
            recorded_on=data.recorded_on,
        ),
    )
    return row
