"""Enrolment: nominating people for a session (or its waiting list), and one leaving it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Date, Select, and_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bekal.shared.auth import Principal, Role
from bekal.shared.db import GUID, utcnow
from bekal.shared.events.catalogue import (
    ParticipantEnrolled,
    ParticipantWaitlisted,
    WithdrawalReason,
)
from bekal.shared.messaging.outbox import add_event
from bekal.shared.problems import Forbidden, NotFound, Problem
from bekal.training import domain
from bekal.training.domain import (
    EnrollmentStatus,
    ParticipantFacts,
    ParticipantStatus,
    RuleBroken,
    SessionStatus,
)
from bekal.training.models import Enrollment, Participant, TrainingSession
from bekal.training.schemas import EnrollmentCreate
from bekal.training.services.common import ENROLLED_COLUMNS, LIVE_STATUSES, invalid, refused
from bekal.training.services.sessions import get_session
from bekal.training.services.withdrawals import end_enrollment, promote_waitlisted

# An enrolment as shown: the row and the participant's name from the replica.
EnrollmentView = tuple[Enrollment, str | None]


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


def _nomination_statement() -> Select[Any]:
    """``_nomination``'s statement, built once with its values as parameters: building it
    per request (two enrolment aliases, whose every column SQLAlchemy adapted again, and the
    subqueries) and generating its cache key cost more than running it (py-spy)."""
    here, other = aliased(Enrollment, name="here"), aliased(Enrollment, name="other")
    session_id = bindparam("session_id", type_=GUID())
    seats = select(func.count()).where(
        Enrollment.session_id == session_id,
        Enrollment.status.not_in(
            [EnrollmentStatus.WITHDRAWN.value, EnrollmentStatus.WAITLISTED.value]
        ),
    )
    queue = select(func.count()).where(
        Enrollment.session_id == session_id,
        Enrollment.status == EnrollmentStatus.WAITLISTED.value,
    )
    return (
        select(
            Participant,
            TrainingSession,
            here.id,
            seats.scalar_subquery(),
            queue.scalar_subquery(),
        )
        .outerjoin(here, and_(here.participant_id == Participant.id, here.session_id == session_id))
        .outerjoin(
            other,
            and_(
                other.participant_id == Participant.id,
                other.session_id != session_id,
                other.status != EnrollmentStatus.WITHDRAWN.value,
            ),
        )
        .outerjoin(
            TrainingSession,
            and_(
                TrainingSession.id == other.session_id,
                TrainingSession.status != SessionStatus.CANCELLED.value,
                TrainingSession.start_date <= bindparam("end_date", type_=Date()),
                TrainingSession.end_date >= bindparam("start_date", type_=Date()),
            ),
        )
        .where(Participant.id.in_(bindparam("participant_ids", expanding=True)))
    )


_NOMINATION = _nomination_statement()


async def enrolment_rows(*, session: AsyncSession, session_id: uuid.UUID) -> list[Any]:
    """A session's enrolments in enrolment order as columns (id, participant_id, status,
    withdrawn_on, withdrawal_reason, full_name): for the pages that show each one and change
    none, without building an ORM object per enrolment."""
    rows = await session.execute(
        select(*ENROLLED_COLUMNS, Participant.full_name)
        .outerjoin(Participant, Participant.id == Enrollment.participant_id)
        .where(Enrollment.session_id == session_id)
        .order_by(Enrollment.created_at, Enrollment.id)
    )
    return list(rows)


@dataclass(frozen=True)
class _Nomination:
    """What enrolling a batch in a session needs to know, read with the session locked."""

    people: dict[uuid.UUID, Participant]
    busy: dict[uuid.UUID, str]  # in (or queued for) another session on overlapping dates
    already: set[uuid.UUID]  # people of the batch with any enrolment in this session
    taken: int  # seats of this session held (enrolled and beyond, not queued or withdrawn)
    queued: int  # this session's waiting list


async def _nomination(
    *, session: AsyncSession, ts: TrainingSession, participant_ids: Sequence[uuid.UUID]
) -> _Nomination:
    """The people of the batch with what the rules ask about them, in one query.

    It was three round trips: the session's every enrolment (to count seats), the people, and
    their other sessions. The counts come from subqueries of this statement, which runs after
    the session's row is locked (its snapshot is taken then, so no seat is missed). When none
    of the batch is known the counts do not matter: every one of them is refused as unknown.
    """
    rows = await session.execute(
        _NOMINATION,
        {
            "session_id": ts.id,
            "start_date": ts.start_date,
            "end_date": ts.end_date,
            "participant_ids": list(set(participant_ids)),
        },
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


async def nomination_preview(
    *, session: AsyncSession, ts: TrainingSession, participant_ids: Sequence[uuid.UUID]
) -> _Nomination:
    """What enrolment would check for these people, read without changing anything (the staff
    pages show capacity, the waiting list and overlapping sessions before anyone is added)."""
    if not participant_ids:
        return _Nomination({}, {}, set(), taken=0, queued=0)
    return await _nomination(session=session, ts=ts, participant_ids=participant_ids)


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
            raise invalid(
                f"overrides.{i}.participant_id",
                "Pengecualian untuk peserta yang tidak didaftarkan.",
            )
    if overrides and (principal is None or not principal.has_role(Role.TRAINING_ADMIN)):
        raise Forbidden(
            "Pengecualian aturan masa bebas hanya dapat diberikan oleh admin pelatihan.",
            errors=[{"field": "overrides", "message": "perlu peran training_admin"}],
        )
    ts = await get_session(session=session, session_id=session_id, lock=True)
    nomination = await _nomination(session=session, ts=ts, participant_ids=participant_ids)
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
        raise refused(rule) from rule
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
        raise refused(
            RuleBroken(
                "status", f"Sesi berstatus '{ts.status}'; tidak dapat diubah.", conflict=True
            )
        )
    if enrollment.status not in LIVE_STATUSES:
        raise refused(
            RuleBroken(
                "enrollment_id",
                f"Pendaftaran berstatus '{enrollment.status}'; tidak dapat ditarik.",
                conflict=True,
            )
        )
    end_enrollment(session=session, enrollment=enrollment, reason=WithdrawalReason.OTHER, on=today)
    await promote_waitlisted(session=session, ts=ts, today=today)
    ts.updated_at = utcnow()
    return ts
