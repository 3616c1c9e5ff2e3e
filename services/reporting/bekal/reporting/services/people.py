"""People in the projections: shares (sex and birth year), releases, merges and erasure, and
the id a new fact is filed under once a person was merged or erased."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.reporting.models import (
    Certificate,
    Enrollment,
    ErasedParticipant,
    MergedParticipant,
    Participant,
    WaitlistEntry,
)
from bekal.reporting.settings import reporting_settings
from bekal.shared.db import among
from bekal.shared.events.catalogue import InmateReleased, InmateShared, InmatesMerged
from bekal.shared.messaging.models import DeadLetter
from bekal.shared.settings import Settings

# What the erasure key is derived for: PUBLICATION_SECRET keys the public rounding too, and the
# two uses must not share a key.
_ERASURE_KEY_CONTEXT = b"bekal reporting: ids of erased people, v1"

# Where the handlers find the key (ctx.resources).
ERASURE_KEY_RESOURCE = "erasure_key"


class ErasureKey:
    """The two ids an erased person leaves behind, derived with a secret the database never
    holds (a key derived from PUBLICATION_SECRET): the tombstone that tells a later or replayed
    event of the person to stay anonymous, and the anonymous id their facts are filed under.

    Without the secret neither leads back to the participant id, nor one to the other: a copy
    of the database alone cannot link what is left of a person to who they were. The same
    secret gives the same ids on every replica and every rebuild; a new secret needs a rebuild.
    """

    def __init__(self, secret: str) -> None:
        self._key = hmac.digest(secret.encode(), _ERASURE_KEY_CONTEXT, "sha256")

    def _derive(self, purpose: str, participant_id: uuid.UUID) -> uuid.UUID:
        digest = hmac.digest(self._key, f"{purpose}:{participant_id}".encode(), "sha256")
        return uuid.UUID(bytes=digest[:16], version=4)

    def tombstone(self, participant_id: uuid.UUID) -> uuid.UUID:
        """The id of the person's row in ``erased_participants``."""
        return self._derive("erased", participant_id)

    def anonymous(self, participant_id: uuid.UUID) -> uuid.UUID:
        """The id an erased person's enrolments, certificates and waiting-list entries are
        filed under: one per person, so the indicators about people still count them once
        (first completed course, released, ready to trade, new entrepreneur) and every figure
        stays. The anonymous row keeps only what a published figure needs (sex, released or
        not); no birth year, no date of release."""
        return self._derive("anonymous", participant_id)


def erasure_key(settings: Settings) -> ErasureKey:
    return ErasureKey(reporting_settings(settings).publication_secret)


def handler_resources(settings: Settings) -> dict[str, Any]:
    """What the handlers get besides the event (ctx.resources): the erasure key."""
    return {ERASURE_KEY_RESOURCE: erasure_key(settings)}


def key_of(resources: Mapping[str, Any]) -> ErasureKey:
    """The key the app gave the handlers."""
    key = resources[ERASURE_KEY_RESOURCE]
    assert isinstance(key, ErasureKey)
    return key


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
    *, session: AsyncSession, key: ErasureKey, participant_id: uuid.UUID, enrollment_id: uuid.UUID
) -> uuid.UUID:
    """The id to file a new fact under: the survivor of a merge, or anonymous once erased."""
    people = await identities(session=session, key=key, participant_ids={participant_id})
    return people.file_under(participant_id, enrollment_id)


# Merges may chain; a cycle cannot happen but must not hang either.
_MAX_MERGE_HOPS = 10


@dataclass(frozen=True)
class Identities:
    """Who some participant ids are now: the survivor of each (after merges), and the
    anonymous id of those whose person is erased."""

    survivors: dict[uuid.UUID, uuid.UUID]
    anonymous: dict[uuid.UUID, uuid.UUID]

    def file_under(self, participant_id: uuid.UUID, enrollment_id: uuid.UUID) -> uuid.UUID:
        """The id to file a new fact of this enrolment under: the survivor, or the person's
        anonymous id once erased."""
        anonymous = self.anonymous.get(participant_id)
        if anonymous is not None:
            return anonymous
        return self.survivors.get(participant_id, participant_id)


async def _survivors(
    *, session: AsyncSession, participant_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """Each id after the merges it went through: one statement per step of the longest chain."""
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
    return survivors


async def _erased(
    *, session: AsyncSession, key: ErasureKey, participant_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """The anonymous id of each of these ids that has a tombstone: one statement."""
    tombstones = {key.tombstone(p): p for p in participant_ids}
    if not tombstones:
        return {}
    rows = await session.execute(
        select(ErasedParticipant.id, ErasedParticipant.anonymous_id).where(
            among(session, ErasedParticipant.id, set(tombstones))
        )
    )
    return {
        tombstones[tombstone]: anonymous or key.anonymous(tombstones[tombstone])
        for tombstone, anonymous in rows
    }


async def identities(
    *, session: AsyncSession, key: ErasureKey, participant_ids: Collection[uuid.UUID]
) -> Identities:
    """Resolve many participant ids at once (under the shared identity lock). An id's own
    tombstone wins (an id merged into a person since erased has one), then its survivor's."""
    await identity_lock(session=session, exclusive=False)
    survivors = await _survivors(session=session, participant_ids=participant_ids)
    erased = await _erased(
        session=session, key=key, participant_ids=set(participant_ids) | set(survivors.values())
    )
    anonymous: dict[uuid.UUID, uuid.UUID] = {}
    for start in participant_ids:
        found = erased.get(start, erased.get(survivors[start]))
        if found is not None:
            anonymous[start] = found
    return Identities(survivors=survivors, anonymous=anonymous)


async def release_participants(
    *, session: AsyncSession, key: ErasureKey, events: Sequence[InmateReleased]
) -> None:
    """Releases in order, as one by one: each person's row (the survivor's after a merge, the
    anonymous one once erased) is marked released, with the date unless anonymous; a later
    release of the same person in the batch wins.

    Three statements read what the whole batch needs (merges, tombstones, current rows); the
    rows are written when the transaction flushes. A day's import can release hundreds of
    people at once, and one by one each took its own five round trips.
    """
    if not events:
        return
    people = await identities(
        session=session, key=key, participant_ids={e.participant_id for e in events}
    )
    targets = {
        e.participant_id: people.anonymous.get(e.participant_id, people.survivors[e.participant_id])
        for e in events
    }
    rows: dict[uuid.UUID, Participant] = {
        row.id: row
        for row in await session.scalars(
            select(Participant).where(among(session, Participant.id, set(targets.values())))
        )
    }
    for event in events:
        target = targets[event.participant_id]
        row = rows.get(target)
        if row is None:
            row = Participant(id=target, released=False)
            session.add(row)
            rows[target] = row
        if event.participant_id not in people.anonymous:
            row.released_on = event.released_on
        # Released all the same when anonymous (the figures count it), without the date.
        row.released = True


async def _participant(*, session: AsyncSession, participant_id: uuid.UUID) -> Participant:
    row = await session.get(Participant, participant_id)
    if row is None:
        row = Participant(id=participant_id, released=False)
        session.add(row)
    return row


async def merge_participants(
    *, session: AsyncSession, key: ErasureKey, event: InmatesMerged
) -> None:
    """Everything filed under the merged id moves to the survivor; counts of enrolments stay."""
    await identity_lock(session=session, exclusive=True)
    old, survivor = event.participant_id, event.surviving_participant_id
    if old == survivor or await session.get(MergedParticipant, old) is not None:
        return
    erased = await _erased(session=session, key=key, participant_ids={old, survivor})
    if old in erased:
        # Erased already: its facts are anonymous, and no row may name it again.
        return
    if survivor in erased:
        # The survivor was erased first (another partition's order on a replay): the merged
        # id follows it to its anonymous id, by a tombstone of its own.
        session.add(ErasedParticipant(id=key.tombstone(old), anonymous_id=erased[survivor]))
        await _refile(session=session, participant_id=old, anonymous=erased[survivor])
        await _tombstone_merged_into(
            session=session, key=key, participant_id=old, anonymous=erased[survivor]
        )
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
    for model in (Enrollment, Certificate, WaitlistEntry):
        await session.execute(
            update(model).where(model.participant_id == old).values(participant_id=survivor)
        )


async def erase_participant(
    *, session: AsyncSession, key: ErasureKey, participant_id: uuid.UUID
) -> None:
    """Erasure or consent withdrawn: nothing about the person remains, every figure stays.

    The person's enrolments, certificates and waiting-list entries are re-filed under one
    anonymous id (``ErasureKey.anonymous``), so the indicators about people still count them as
    one person; the anonymous row keeps the sex and whether the person was released (what the
    figures group and count by), not the birth year nor the date of release. Of the
    participant id only a keyed tombstone remains; the ids merged into the person get one each
    (their merge rows, which named the person, go), so their late facts follow. Dead letters
    naming the person go too. Idempotent.
    """
    await identity_lock(session=session, exclusive=True)
    tombstone = await session.get(ErasedParticipant, key.tombstone(participant_id))
    if tombstone is not None and tombstone.anonymous_id is not None:
        anonymous = tombstone.anonymous_id
    else:
        # An id merged into a person not erased yet (the registry erases the duplicates with
        # the survivor, each its own event, in any order on a replay): the survivor's id.
        survivor = (await _survivors(session=session, participant_ids={participant_id}))[
            participant_id
        ]
        erased = await _erased(session=session, key=key, participant_ids={survivor})
        anonymous = erased.get(survivor, key.anonymous(survivor))
        if tombstone is None:
            session.add(ErasedParticipant(id=key.tombstone(participant_id), anonymous_id=anonymous))
        else:
            tombstone.anonymous_id = anonymous
    await _refile(session=session, participant_id=participant_id, anonymous=anonymous)
    await session.execute(delete(MergedParticipant).where(MergedParticipant.id == participant_id))
    await _tombstone_merged_into(
        session=session, key=key, participant_id=participant_id, anonymous=anonymous
    )
    await forget_dead_letters(session=session, participant_id=participant_id)


async def _tombstone_merged_into(
    *, session: AsyncSession, key: ErasureKey, participant_id: uuid.UUID, anonymous: uuid.UUID
) -> None:
    """The ids merged into an erased person (directly or along a chain) follow them to their
    anonymous id, each by a tombstone of its own; their merge rows, which named the person, go."""
    merged_in = {participant_id}
    for _ in range(_MAX_MERGE_HOPS):
        found = set(
            await session.scalars(
                select(MergedParticipant.id).where(
                    among(session, MergedParticipant.surviving_id, merged_in)
                )
            )
        )
        if not found:
            break
        for old in found:
            if await session.get(ErasedParticipant, key.tombstone(old)) is None:
                session.add(ErasedParticipant(id=key.tombstone(old), anonymous_id=anonymous))
            await _refile(session=session, participant_id=old, anonymous=anonymous)
        await session.execute(
            delete(MergedParticipant).where(among(session, MergedParticipant.id, found))
        )
        merged_in = found


async def forget_dead_letters(*, session: AsyncSession, participant_id: uuid.UUID) -> None:
    """A record that could not be handled may name the person beside a facility and dates (or,
    sent before names were sealed, their name): the dead letters naming them go."""
    await session.execute(delete(DeadLetter).where(DeadLetter.naming(str(participant_id))))


async def _refile(
    *, session: AsyncSession, participant_id: uuid.UUID, anonymous: uuid.UUID
) -> None:
    """What is filed under ``participant_id`` moves to ``anonymous``; of the person's row only
    the sex and whether released."""
    row = await session.get(Participant, participant_id)
    if row is not None:
        kept = await _participant(session=session, participant_id=anonymous)
        kept.sex = kept.sex or row.sex
        kept.released = bool(kept.released or row.released or row.released_on is not None)
        await session.delete(row)
    await session.flush()
    for model in (Enrollment, Certificate, WaitlistEntry):
        await session.execute(
            update(model)
            .where(model.participant_id == participant_id)
            .values(participant_id=anonymous)
        )


async def record_participants(
    *, session: AsyncSession, key: ErasureKey, events: Sequence[InmateShared]
) -> int:
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
    erased = await _erased(session=session, key=key, participant_ids=ids)
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
        anonymous = erased.get(event.participant_id)
        if anonymous is not None and anonymous == key.anonymous(event.participant_id):
            # A share replayed after the erasure: the sex only, on the anonymous row, as the
            # erasure would have kept it had the share come first.
            kept = await _participant(session=session, participant_id=anonymous)
            kept.sex = event.sex.value
            ignored += 1
            continue
        if event.participant_id in gone:
            # Merged into another record (erased since, or not): the survivor's share counts.
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


async def filed_ids(*, session: AsyncSession) -> set[uuid.UUID]:
    """Every id a fact or a person is filed under (for matching against tombstones)."""
    ids: set[uuid.UUID] = set(await session.scalars(select(Participant.id)))
    ids |= set(await session.scalars(select(MergedParticipant.id)))
    for model in (Enrollment, Certificate, WaitlistEntry):
        ids |= set(await session.scalars(select(model.participant_id).distinct()))
    return ids


# The anonymous ids before they were keyed: uuid5 of the participant id in this namespace,
# which anyone holding the tombstoned participant id could compute.
_UNKEYED_NAMESPACE = uuid.UUID("6f1f3c2e-2b1a-4b8e-9a57-2f0f6f1c0b7d")


async def key_old_tombstones(*, session: AsyncSession, key: ErasureKey) -> int:
    """Tombstones written before the ids were keyed (migration 0007 leaves them with no
    ``anonymous_id``: it cannot read the secret) hold the raw participant id, and the person's
    facts sit under an anonymous id derived from it without a key. Re-key them: the keyed
    tombstone, and the facts moved to the keyed anonymous id. Run before any event is applied
    (and again now and then, for rows an older replica wrote during an upgrade); returns how
    many were re-keyed."""
    if (
        await session.scalar(
            select(ErasedParticipant.id).where(ErasedParticipant.anonymous_id.is_(None)).limit(1)
        )
        is None
    ):
        return 0
    await identity_lock(session=session, exclusive=True)
    old = list(
        await session.scalars(
            select(ErasedParticipant.id).where(ErasedParticipant.anonymous_id.is_(None))
        )
    )
    await session.execute(delete(ErasedParticipant).where(ErasedParticipant.anonymous_id.is_(None)))
    await session.flush()
    for participant_id in old:
        await erase_participant(session=session, key=key, participant_id=participant_id)
        tombstone = await session.get(ErasedParticipant, key.tombstone(participant_id))
        assert tombstone is not None and tombstone.anonymous_id is not None
        unkeyed = uuid.uuid5(_UNKEYED_NAMESPACE, f"erased-person:{participant_id}")
        await _refile(session=session, participant_id=unkeyed, anonymous=tombstone.anonymous_id)
    return len(old)
