"""Registry merges: one person held under two ids becomes one, their records folded."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection
from datetime import date

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.db import among, utcnow
from bekal.shared.events.catalogue import (
    EnrollmentWithdrawn,
    InmatesMerged,
    ParticipantLeftWaitlist,
    WithdrawalReason,
)
from bekal.shared.messaging.outbox import add_event
from bekal.training import domain
from bekal.training.domain import AssessmentResult, AttendanceStatus, EnrollmentStatus
from bekal.training.models import (
    Assessment,
    AttendanceRecord,
    Enrollment,
    FollowUp,
    MergedParticipant,
    Participant,
    ParticipantAbsence,
    ParticipantReturn,
    ReadinessChecklist,
    TrainingSession,
)
from bekal.training.services.attendance import write_day
from bekal.training.services.outcomes import DECIDED, redecide
from bekal.training.services.sessions import get_session
from bekal.training.services.withdrawals import promote_waitlisted


async def surviving_id(*, session: AsyncSession, participant_id: uuid.UUID) -> uuid.UUID | None:
    """The id a merged-away participant id now lives under; None if it was never merged."""
    return (await surviving_ids(session=session, participant_ids=[participant_id])).get(
        participant_id
    )


async def surviving_ids(
    *, session: AsyncSession, participant_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """``surviving_id`` of many ids at once, one statement per step of the longest chain: the
    merged-away ids among them, each with the id it now lives under."""
    links: dict[uuid.UUID, uuid.UUID] = {}
    looked_up: set[uuid.UUID] = set()
    frontier = set(participant_ids)
    while frontier:
        looked_up |= frontier
        found = {
            old: surviving
            for old, surviving in await session.execute(
                select(MergedParticipant.id, MergedParticipant.surviving_id).where(
                    among(session, MergedParticipant.id, frontier)
                )
            )
        }
        links.update(found)
        frontier = set(found.values()) - looked_up
    survivors: dict[uuid.UUID, uuid.UUID] = {}
    for participant_id in participant_ids:
        seen: set[uuid.UUID] = set()
        current = participant_id
        while (surviving := links.get(current)) is not None:
            if surviving in seen:  # pragma: no cover - the registry never merges in a loop
                break
            seen.add(current)
            current = surviving
        if current != participant_id:
            survivors[participant_id] = current
    return survivors


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
    new = await surviving_id(session=session, participant_id=event.surviving_participant_id) or (
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
    # The old record's absences were the same person's: the survivor's days are judged by them.
    await session.execute(
        update(ParticipantAbsence)
        .where(ParticipantAbsence.participant_id == old)
        .values(participant_id=new)
    )
    # And their returns, but for a day the survivor already has one (a day holds one return).
    await session.execute(
        update(ParticipantReturn)
        .where(
            ParticipantReturn.participant_id == old,
            ParticipantReturn.returned_on.not_in(
                select(ParticipantReturn.returned_on).where(ParticipantReturn.participant_id == new)
            ),
        )
        .values(participant_id=new)
    )
    await session.execute(delete(ParticipantReturn).where(ParticipantReturn.participant_id == old))
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
            session=session, merged=enrollment, surviving=twin, old=old, new=new, on=event.merged_on
        )
        moved += 1
    for model in (ReadinessChecklist, FollowUp):
        result = await session.execute(
            update(model).where(model.participant_id == old).values(participant_id=new)
        )
        moved += result.rowcount or 0  # type: ignore[attr-defined]
    return moved


async def _fold_twin_enrollments(
    *,
    session: AsyncSession,
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
    await _fold_history(session=session, ts=ts, kept=kept, dropped=dropped)
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
        await redecide(
            session=session,
            ts=ts,
            enrollment=kept,
            reason="Penggabungan data: peserta yang sama tercatat dua kali pada sesi ini.",
            today=on,
        )
    await promote_waitlisted(session=session, ts=ts, today=on)


async def _fold_history(
    *, session: AsyncSession, ts: TrainingSession, kept: Enrollment, dropped: Enrollment
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
        folded = domain.folded_day(
            AttendanceStatus(mine.status) if mine is not None else None,
            AttendanceStatus(record.status),
        )
        if folded is not None:
            better[record.day][kept.id] = folded
    for day, statuses in sorted(better.items()):
        await write_day(
            session=session,
            ts=ts,
            day=day,
            statuses=statuses,
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
        ours = units.get(theirs.unit_code)
        if (
            domain.folded_result(
                AssessmentResult(ours.result) if ours is not None else None,
                AssessmentResult(theirs.result),
            )
            is None
        ):
            continue
        if ours is None:
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
            ours.result, ours.assessor, ours.assessed_at = (
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
