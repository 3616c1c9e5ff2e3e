"""People in the projections: shares (sex and birth year), releases, merges and erasure, and
the id a new fact is filed under once a person was merged or erased."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.reporting.models import (
    Certificate,
    Enrollment,
    ErasedParticipant,
    MergedParticipant,
    Participant,
    WaitlistEntry,
)
from bekal.shared.db import among
from bekal.shared.events.catalogue import InmateReleased, InmateShared, InmatesMerged

# Namespace of the anonymous ids erased people's facts are filed under.
ANONYMOUS_NAMESPACE = uuid.UUID("6f1f3c2e-2b1a-4b8e-9a57-2f0f6f1c0b7d")


def anonymous_id(participant_id: uuid.UUID) -> uuid.UUID:
    """The id an erased person's enrolments, certificates and waiting-list entries are filed
    under: one per person, so the indicators about people still count them once (first
    completed course, released, ready to trade, new entrepreneur) and every figure stays.

    The same on every rebuild and whatever the order events arrive in: a fact of the person
    replayed after the erasure lands beside the others. The anonymous row keeps only what a
    published figure needs (sex, released or not); no birth year, no date of release.
    """
    return uuid.uuid5(ANONYMOUS_NAMESPACE, f"erased-person:{participant_id}")


# The advisory lock (any number of ours) ordering identity changes against new facts.
_IDENTITY_LOCK = 0x62656B616C


async def identity_lock(*, session: AsyncSession, exclusive: bool) -> None:
    """Order merges and erasures (exclusive) against facts filed under a participant id
    (shared), so a fact committed at the same time as an erasure or a merge is never filed
    under the old id. Replicas apply events concurrently on PostgreSQL; SQLite already takes
    one writer at a time (BEGIN IMMEDIATE). Held to the end of the transaction."""
    if session.bind is None or session.bind.dialect.name != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await session.execute(text(f"SELECT {function}(:key)"), {"key": _IDENTITY_LOCK})


async def resolve_participant(
    *, session: AsyncSession, participant_id: uuid.UUID, enrollment_id: uuid.UUID
) -> uuid.UUID:
    """The id to file a new fact under: the survivor of a merge, or anonymous once erased."""
    people = await identities(session=session, participant_ids={participant_id})
    return people.file_under(participant_id, enrollment_id)


# Merges may chain; a cycle cannot happen but must not hang either.
_MAX_MERGE_HOPS = 10


@dataclass(frozen=True)
class Identities:
    """Who some participant ids are now: the survivor of each (after merges), and which
    survivors are erased."""

    survivors: dict[uuid.UUID, uuid.UUID]
    erased: frozenset[uuid.UUID]

    def file_under(self, participant_id: uuid.UUID, enrollment_id: uuid.UUID) -> uuid.UUID:
        """The id to file a new fact of this enrolment under: the survivor, or the person's
        anonymous id once erased."""
        survivor = self.survivors.get(participant_id, participant_id)
        if survivor in self.erased:
            return anonymous_id(survivor)
        return survivor


async def identities(
    *, session: AsyncSession, participant_ids: Collection[uuid.UUID]
) -> Identities:
    """Resolve many participant ids at once (under the shared identity lock): one statement per
    step of the longest merge chain, one for the erased."""
    await identity_lock(session=session, exclusive=False)
    links: dict[uuid.UUID, uuid.UUID] = {}
    looked_up: set[uuid.UUID] = set()
    frontier = set(participant_ids)
    for _ in range(_MAX_MERGE_HOPS):
        frontier -= looked_up
        if not frontier:
            break
        looked_up |= frontier
        found = {
            old: survivor
            for old, survivor in await session.execute(
                select(MergedParticipant.id, MergedParticipant.surviving_id).where(
                    among(session, MergedParticipant.id, frontier)
                )
            )
        }
        links.update(found)
        frontier = set(found.values())
    survivors: dict[uuid.UUID, uuid.UUID] = {}
    for start in participant_ids:
        current = start
        for _ in range(_MAX_MERGE_HOPS):
            if current not in links:
                break
            current = links[current]
        survivors[start] = current
    erased = frozenset(
        await session.scalars(
            select(ErasedParticipant.id).where(
                among(session, ErasedParticipant.id, set(survivors.values()))
            )
        )
    )
    return Identities(survivors=survivors, erased=erased)


async def release_participant(*, session: AsyncSession, event: InmateReleased) -> None:
    people = await identities(session=session, participant_ids={event.participant_id})
    participant_id = people.survivors[event.participant_id]
    if participant_id in people.erased:
        # Released all the same (the figures count it), without the date.
        row = await _participant(session=session, participant_id=anonymous_id(participant_id))
        row.released = True
        return
    row = await _participant(session=session, participant_id=participant_id)
    row.released_on = event.released_on
    row.released = True


async def _participant(*, session: AsyncSession, participant_id: uuid.UUID) -> Participant:
    row = await session.get(Participant, participant_id)
    if row is None:
        row = Participant(id=participant_id, released=False)
        session.add(row)
    return row


async def merge_participants(*, session: AsyncSession, event: InmatesMerged) -> None:
    """Everything filed under the merged id moves to the survivor; counts of enrolments stay."""
    await identity_lock(session=session, exclusive=True)
    old, survivor = event.participant_id, event.surviving_participant_id
    if old == survivor or await session.get(MergedParticipant, old) is not None:
        return
    session.add(MergedParticipant(id=old, surviving_id=survivor))
    old_row = await session.get(Participant, old)
    if old_row is not None:
        kept = await session.get(Participant, survivor)
        if kept is None:
            session.add(
                Participant(
                    id=survivor,
                    sex=old_row.sex,
                    birth_year=old_row.birth_year,
                    released_on=old_row.released_on,
                    released=old_row.released,
                )
            )
        await session.delete(old_row)
    await session.flush()
    await session.execute(
        update(Enrollment).where(Enrollment.participant_id == old).values(participant_id=survivor)
    )
    await session.execute(
        update(Certificate).where(Certificate.participant_id == old).values(participant_id=survivor)
    )
    await session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.participant_id == old)
        .values(participant_id=survivor)
    )
    if await session.get(ErasedParticipant, survivor) is not None:
        await erase_participant(session=session, participant_id=survivor)


async def erase_participant(*, session: AsyncSession, participant_id: uuid.UUID) -> None:
    """Erasure or consent withdrawn: nothing about the person remains, every figure stays.

    The person's enrolments, certificates and waiting-list entries are re-filed under one
    anonymous id (``anonymous_id``), so the indicators about people still count them as one
    person; the anonymous row keeps the sex and whether the person was released (what the
    figures group and count by), not the birth year nor the date of release.
    """
    await identity_lock(session=session, exclusive=True)
    if await session.get(ErasedParticipant, participant_id) is None:
        session.add(ErasedParticipant(id=participant_id))
    anonymous = anonymous_id(participant_id)
    row = await session.get(Participant, participant_id)
    if row is not None:
        kept = await _participant(session=session, participant_id=anonymous)
        kept.sex = kept.sex or row.sex
        kept.released = bool(kept.released or row.released or row.released_on is not None)
        await session.delete(row)
    await session.flush()
    await session.execute(
        update(Enrollment)
        .where(Enrollment.participant_id == participant_id)
        .values(participant_id=anonymous)
    )
    await session.execute(
        update(Certificate)
        .where(Certificate.participant_id == participant_id)
        .values(participant_id=anonymous)
    )
    await session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.participant_id == participant_id)
        .values(participant_id=anonymous)
    )


async def record_participants(*, session: AsyncSession, events: Sequence[InmateShared]) -> int:
    """Sex and birth year only: the name the event carries (for certificates) is not kept.

    Shares are applied in order, as one by one; returns how many were ignored (the person
    erased, or merged into another record).

    Three statements read what the whole batch needs (erased, merged, current rows); a later
    share of the same person in the batch wins; rows are written when the transaction flushes.
    """
    if not events:
        return 0
    await identity_lock(session=session, exclusive=False)
    ids = {e.participant_id for e in events}
    erased = set(
        await session.scalars(
            select(ErasedParticipant.id).where(among(session, ErasedParticipant.id, ids))
        )
    )
    gone = set(erased)
    gone |= set(
        await session.scalars(
            select(MergedParticipant.id).where(among(session, MergedParticipant.id, ids - gone))
        )
    )
    rows: dict[uuid.UUID, Participant] = {
        row.id: row
        for row in await session.scalars(
            select(Participant).where(among(session, Participant.id, ids - gone))
        )
    }
    ignored = 0
    for event in events:
        if event.participant_id in erased:
            # A share replayed after the erasure: the sex only, on the anonymous row, as the
            # erasure would have kept it had the share come first.
            kept = await _participant(
                session=session, participant_id=anonymous_id(event.participant_id)
            )
            kept.sex = event.sex.value
            ignored += 1
            continue
        if event.participant_id in gone:
            ignored += 1
            continue
        row = rows.get(event.participant_id)
        if row is None:
            row = Participant(id=event.participant_id, released=False)
            session.add(row)
            rows[row.id] = row
        row.sex = event.sex.value
        row.birth_year = event.birth_year
    return ignored
