"""Each shared person's data key (crypto-shredding): made when shared, destroyed at erasure.

A consent withdrawal destroys the live key too; a later consent makes a key of the next
generation (``personal.key_id``: the participant id for the 1st, ``"<id>.<generation>"`` after),
so what was sealed before the withdrawal stays unreadable while the new shares open. The
generations destroyed are remembered (``DestroyedPersonKey``, no secret): no kid is issued twice,
and an erasure tombstones every one.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.registry.models import DestroyedPersonKey, Inmate
from bekal.registry.models import PersonKey as PersonKeyRow
from bekal.shared.db import among, copy_rows, table_of, utcnow
from bekal.shared.events.catalogue import (
    PersonKeyDestroyed,
    PersonKeyPublished,
    PersonKeyPublishedV1,
)
from bekal.shared.events.personal import (
    PersonKey,
    key_id,
    key_owner,
    key_to_text,
    next_generation,
)
from bekal.shared.events.topics import REGISTRY_PERSON_KEYS
from bekal.shared.messaging.models import OutboxMessage
from bekal.shared.messaging.outbox import add_event, add_events, outbox_values


async def person_keys(
    *, session: AsyncSession, participant_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, PersonKey]:
    """The keys of ``participant_ids``, made for those who have none yet.

    A new key is staged on its topic (PersonKeyPublished) in the caller's transaction, before
    the events it will seal: the outbox relay has it on the brokers before they are sent.
    """
    ids = set(participant_ids)
    if not ids:
        return {}
    # No autoflush: flushing the caller's pending rows here (a new inmate) would take their
    # unique keys in the database before the use case's own checks are done, and hold them
    # while this transaction goes on. Keys staged earlier in this transaction are pending too.
    with session.no_autoflush:
        found = await session.scalars(
            select(PersonKeyRow).where(among(session, PersonKeyRow.participant_id, ids))
        )
        rows = {row.participant_id: row for row in found}
    for pending in session.new:
        if isinstance(pending, PersonKeyRow) and pending.participant_id in ids:
            rows.setdefault(pending.participant_id, pending)
    destroyed = await _last_destroyed(session, ids - rows.keys())
    for participant_id in sorted(ids - rows.keys()):
        generation = next_generation(live=None, destroyed=destroyed.get(participant_id))
        key = PersonKey.new(key_id(str(participant_id), generation))
        row = PersonKeyRow(
            participant_id=participant_id,
            generation=generation,
            secret=key.secret,
            created_at=utcnow(),
        )
        session.add(row)
        rows[participant_id] = row
        add_event(
            session,
            PersonKeyPublished(
                participant_id=participant_id, kid=key.kid, key=key_to_text(key.secret)
            ),
        )
    return {pid: _key(row) for pid, row in rows.items()}


def _key(row: PersonKeyRow) -> PersonKey:
    return PersonKey(kid=key_id(str(row.participant_id), row.generation or 1), secret=row.secret)


async def _last_destroyed(
    session: AsyncSession, participant_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """The last generation destroyed of each of ``participant_ids`` that had one destroyed."""
    if not participant_ids:
        return {}
    with session.no_autoflush:
        found = await session.execute(
            select(DestroyedPersonKey.participant_id, func.max(DestroyedPersonKey.generation))
            .where(among(session, DestroyedPersonKey.participant_id, set(participant_ids)))
            .group_by(DestroyedPersonKey.participant_id)
        )
        return {pid: int(generation) for pid, generation in found.all()}


async def new_person_keys(
    *, session: AsyncSession, participant_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, PersonKey]:
    """Keys for people created in this transaction (who cannot hold one yet), written in bulk.

    As ``person_keys`` makes them, without looking for keys held: the rows and their
    PersonKeyPublished events in a few statements, the events in the outbox before those the
    keys will seal (the caller's, written after this).
    """
    ids = sorted(set(participant_ids))
    if not ids:
        return {}
    now = utcnow()
    keys = {pid: PersonKey.new(str(pid)) for pid in ids}
    await copy_rows(
        session,
        table_of(PersonKeyRow),
        [
            {"participant_id": pid, "secret": key.secret, "created_at": now}
            for pid, key in keys.items()
        ],
    )
    await add_events(
        session,
        [
            outbox_values(
                PersonKeyPublished(participant_id=pid, kid=key.kid, key=key_to_text(key.secret))
            )
            for pid, key in keys.items()
        ],
    )
    return keys


async def person_key(*, session: AsyncSession, participant_id: uuid.UUID) -> PersonKey:
    return (await person_keys(session=session, participant_ids=[participant_id]))[participant_id]


async def destroy_person_keys(
    *, session: AsyncSession, participant_ids: Collection[uuid.UUID]
) -> None:
    """Delete the keys of every generation and publish their tombstones: the people's sealed
    fields are gone, all of them (an erasure)."""
    await _destroy(session, set(participant_ids), every_generation=True)


async def withdraw_person_key(*, session: AsyncSession, participant_id: uuid.UUID) -> None:
    """Destroy the person's live key and publish its tombstone (a consent withdrawal): what was
    sealed with it stays unreadable for good; a later consent takes a key of the next
    generation."""
    await _destroy(session, {participant_id}, every_generation=False)


async def destroy_withdrawn_keys(*, session: AsyncSession) -> int:
    """Destroy the live keys of people whose consent is withdrawn and not given again: a
    withdrawal recorded before withdrawals destroyed the key kept it. Returns how many."""
    ids = set(
        await session.scalars(
            select(PersonKeyRow.participant_id)
            .join(Inmate, Inmate.id == PersonKeyRow.participant_id)
            .where(
                Inmate.shared.is_(False),
                Inmate.consent_withdrawn_at.is_not(None),
                Inmate.erased_at.is_(None),
            )
        )
    )
    await _destroy(session, ids, every_generation=False)
    return len(ids)


async def _destroy(session: AsyncSession, ids: set[uuid.UUID], *, every_generation: bool) -> None:
    if not ids:
        return
    live = {
        pid: int(generation or 1)
        for pid, generation in await session.execute(
            select(PersonKeyRow.participant_id, PersonKeyRow.generation).where(
                among(session, PersonKeyRow.participant_id, ids)
            )
        )
    }
    destroyed = await _last_destroyed(session, ids)
    await session.execute(
        delete(PersonKeyRow).where(among(session, PersonKeyRow.participant_id, ids))
    )
    now = utcnow()
    if live:
        await session.execute(
            insert(DestroyedPersonKey),
            [
                {"participant_id": pid, "generation": generation, "destroyed_at": now}
                for pid, generation in sorted(live.items())
            ],
        )
    if every_generation:
        # Every generation ever issued, held or not: a key published before this registry's
        # database was restored from a backup still goes (the 1st of every shared person).
        last = {pid: max(live.get(pid, 1), destroyed.get(pid, 1)) for pid in ids}
        kids = [key_id(str(pid), g) for pid in sorted(ids) for g in range(1, last[pid] + 1)]
    else:
        kids = [key_id(str(pid), generation) for pid, generation in sorted(live.items())]
    if not kids:
        return
    # The outbox keeps what it sent: the key's own record there goes too (sent or not; an
    # unsent one would only publish a key whose tombstone follows).
    await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.topic == REGISTRY_PERSON_KEYS,
            OutboxMessage.event_type.in_(
                [PersonKeyPublished.event_type(), PersonKeyPublishedV1.event_type()]
            ),
            among(session, OutboxMessage.aggregate_id, set(kids)),
        )
    )
    for kid in kids:
        add_event(session, PersonKeyDestroyed(participant_id=uuid.UUID(key_owner(kid)[0]), kid=kid))


async def keys_for_the_shared(*, session: AsyncSession) -> int:
    """Make the keys of every shared, non-erased person who has none (people shared before
    crypto-shredding); returns how many were made. Their PersonKeyPublished go to the outbox.

    Not for people whose consent is withdrawn: their history is to stay unreadable, so it is
    re-keyed without their fields."""
    ids = set(
        await session.scalars(
            select(Inmate.id).where(Inmate.shared.is_(True), Inmate.erased_at.is_(None))
        )
    )
    held = set(await session.scalars(select(PersonKeyRow.participant_id)))
    await person_keys(session=session, participant_ids=ids - held)
    return len(ids - held)


async def key_of(*, session: AsyncSession, participant_id: uuid.UUID) -> PersonKey | None:
    """The person's live key if they have one (None: erased, consent withdrawn, never shared)."""
    row = await session.get(PersonKeyRow, participant_id)
    return None if row is None else _key(row)


async def key_named(*, session: AsyncSession, kid: str) -> PersonKey | None:
    """The key ``kid`` names if it is the live one (None: destroyed, or not a kid)."""
    try:
        person, _ = key_owner(kid)
        participant_id = uuid.UUID(person)
    except ValueError:
        return None
    key = await key_of(session=session, participant_id=participant_id)
    return key if key is not None and key.kid == kid else None
