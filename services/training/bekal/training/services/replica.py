"""The registry replica: facilities and consenting inmates, kept from registry events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.db import among, insert_rows, table_of, utcnow
from bekal.shared.events.catalogue import (
    EnrollmentWithdrawn,
    FacilityRegistered,
    FacilityUpdated,
    InmateConsentWithdrawn,
    InmateDied,
    InmateErased,
    InmateReleased,
    InmateReturned,
    InmateShared,
    InmateTemporarilyAbsent,
    InmateTransferred,
    WithdrawalReason,
)
from bekal.shared.idempotency import IdempotencyRecord
from bekal.shared.messaging.models import DeadLetter, OutboxMessage
from bekal.shared.pagination import Page, paginate
from bekal.shared.problems import NotFound
from bekal.training.domain import ParticipantStatus
from bekal.training.models import (
    Enrollment,
    Facility,
    MergedParticipant,
    Participant,
    ParticipantAbsence,
    ParticipantReturn,
)
from bekal.training.services.common import LIVE_STATUSES
from bekal.training.services.withdrawals import withdraw_from_open_sessions


def _is_stale(current: datetime | None, incoming: datetime | None) -> bool:
    """An event older than the one a replica row already reflects must not overwrite it."""
    return current is not None and incoming is not None and incoming < current


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
    survivor has its own InmateShared), so is an erased person's (its name cannot be opened),
    an event older than the row's state changes nothing, a later event for the same person in
    the same batch wins, and a person seen for the first time is in custody (a later release or
    transfer event moves them on).
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
        if pid in merged or event.full_name is None or event.birth_year is None:
            # Merged away, or erased: the key that sealed the name is destroyed (a replay of
            # the history, or a share still in flight); the erasure that follows applies.
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
        table_of(Participant),
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


async def apply_inmates_released(
    *, session: AsyncSession, events: Sequence[tuple[InmateReleased, datetime | None]]
) -> list[list[EnrollmentWithdrawn]]:
    """Releases in order, as one by one (each event with its time): the replica row takes the
    release unless it reflects a later event; the person's live enrolments end (each ending
    published, the queue moving up). Returns each event's endings.

    Two statements read what the batch needs: the rows, and who has a live enrolment. Only
    those go through the withdrawal, which locks their sessions; most people a day's import
    releases were never on a course.
    """
    ids = {event.participant_id for event, _ in events}
    rows = {
        row.id: row
        for row in await session.scalars(
            select(Participant).where(among(session, Participant.id, ids))
        )
    }
    enrolled = set(
        await session.scalars(
            select(Enrollment.participant_id)
            .where(
                among(session, Enrollment.participant_id, ids),
                Enrollment.status.in_(LIVE_STATUSES),
            )
            .distinct()
        )
    )
    endings: list[list[EnrollmentWithdrawn]] = []
    for event, as_of in events:
        row = rows.get(event.participant_id)
        if row is not None and not _is_stale(row.as_of, as_of):
            row.status = ParticipantStatus.RELEASED.value
            row.released_on = event.released_on
            row.release_kind = event.release_kind.value
            row.as_of = as_of or row.as_of
            row.updated_at = utcnow()
        # Ending enrolments only ends them and moves queues up (waiting to enrolled): no one
        # outside ``enrolled`` gains a live enrolment within the batch.
        endings.append(
            await withdraw_from_open_sessions(
                session=session,
                participant_id=event.participant_id,
                reason=WithdrawalReason.RELEASED,
                on=event.released_on,
            )
            if event.participant_id in enrolled
            else []
        )
    return endings


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


async def apply_inmate_absent(
    *, session: AsyncSession, event: InmateTemporarilyAbsent, as_of: datetime | None
) -> None:
    """A temporary absence is noted; it ends no course (the person comes back). Its period is
    kept beside the current state, so past days are judged by it."""
    row = await session.get(Participant, event.participant_id)
    if row is None:
        return
    known = await session.scalar(
        select(ParticipantAbsence.id).where(
            ParticipantAbsence.participant_id == row.id,
            ParticipantAbsence.absent_from == event.absent_from,
        )
    )
    if known is None:
        # A return already applied ends it: the absence arrived late (retried from the
        # dead-letter topic, say). The first return from its first day on is its end.
        back = await session.scalar(
            select(func.min(ParticipantReturn.returned_on)).where(
                ParticipantReturn.participant_id == row.id,
                ParticipantReturn.returned_on >= event.absent_from,
            )
        )
        session.add(
            ParticipantAbsence(
                id=uuid.uuid4(),
                participant_id=row.id,
                absent_from=event.absent_from,
                returned_on=back,
                reason=event.reason.value,
                created_at=utcnow(),
            )
        )
    if not _is_stale(row.as_of, as_of):
        row.absent_from = event.absent_from
        row.as_of = as_of or row.as_of
        row.updated_at = utcnow()


async def apply_inmate_returned(
    *, session: AsyncSession, event: InmateReturned, as_of: datetime | None
) -> None:
    row = await session.get(Participant, event.participant_id)
    if row is not None:
        known = await session.get(ParticipantReturn, (row.id, event.returned_on))
        if known is None:
            session.add(ParticipantReturn(participant_id=row.id, returned_on=event.returned_on))
        # The absence open on the day of return ends then, and so does one that a later return
        # closed only because this one came after it: each absence ends at the first return on
        # or after its first day, whatever order the two arrive in.
        await session.execute(
            update(ParticipantAbsence)
            .where(
                ParticipantAbsence.participant_id == row.id,
                ParticipantAbsence.absent_from <= event.returned_on,
                or_(
                    ParticipantAbsence.returned_on.is_(None),
                    ParticipantAbsence.returned_on > event.returned_on,
                ),
            )
            .values(returned_on=event.returned_on)
        )
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
    # A record about the person that could not be handled (a share sent before names were
    # sealed holds the name): the name goes; an erasure deletes the record (``erasure``).
    for letter in (await session.scalars(select(DeadLetter).where(DeadLetter.naming(pid)))).all():
        if letter.value is not None:
            letter.value = _scrub(letter.value, name)
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


async def nomination_candidates(
    *,
    session: AsyncSession,
    facility_id: uuid.UUID,
    window: tuple[date, date],
    limit: int,
) -> tuple[list[Participant], int]:
    """Up to ``limit`` of a facility's people in custody (not anonymised) to nominate for a
    session, and how many there are in all. Those expected out within ``window`` (the
    session's release window, first and last day) come first, then the rest, each by name: at
    a large prison the first ``limit`` by name alone left out most of those near release."""
    first, last = window
    where = (
        Participant.facility_id == facility_id,
        Participant.status == ParticipantStatus.IN_CUSTODY.value,
        Participant.anonymised_on.is_(None),
    )
    outside = case(
        (Participant.expected_release_date.between(first, last), 0),
        else_=1,
    )
    rows = await session.scalars(
        select(Participant)
        .where(*where)
        .order_by(outside, Participant.full_name, Participant.id)
        .limit(limit)
    )
    found = list(rows)
    if len(found) < limit:
        return found, len(found)
    total = await session.scalar(select(func.count()).select_from(Participant).where(*where))
    return found, int(total or 0)


async def get_participant(*, session: AsyncSession, participant_id: uuid.UUID) -> Participant:
    row = await session.get(Participant, participant_id)
    if row is None:
        raise NotFound("Peserta tidak dikenal di layanan pelatihan.")
    return row
