"""Each shared person's data key (crypto-shredding): made when shared, destroyed at erasure."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.registry.models import Inmate
from bekal.registry.models import PersonKey as PersonKeyRow
from bekal.shared.db import among, utcnow
from bekal.shared.events.catalogue import PersonKeyDestroyed, PersonKeyPublished
from bekal.shared.events.personal import PersonKey, key_to_text
from bekal.shared.events.topics import REGISTRY_PERSON_KEYS
from bekal.shared.messaging.models import OutboxMessage
from bekal.shared.messaging.outbox import add_event


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
    for participant_id in sorted(ids - rows.keys()):
        key = PersonKey.new(str(participant_id))
        row = PersonKeyRow(participant_id=participant_id, secret=key.secret, created_at=utcnow())
        session.add(row)
        rows[participant_id] = row
        add_event(
            session,
            PersonKeyPublished(participant_id=participant_id, key=key_to_text(key.secret)),
        )
    return {pid: PersonKey(kid=str(pid), secret=row.secret) for pid, row in rows.items()}


async def person_key(*, session: AsyncSession, participant_id: uuid.UUID) -> PersonKey:
    return (await person_keys(session=session, participant_ids=[participant_id]))[participant_id]


async def destroy_person_keys(
    *, session: AsyncSession, participant_ids: Collection[uuid.UUID]
) -> None:
    """Delete the keys and publish their tombstones: the people's sealed fields are gone."""
    ids = set(participant_ids)
    if not ids:
        return
    held = set(
        await session.scalars(
            select(PersonKeyRow.participant_id).where(
                among(session, PersonKeyRow.participant_id, ids)
            )
        )
    )
    await session.execute(
        delete(PersonKeyRow).where(among(session, PersonKeyRow.participant_id, ids))
    )
    # The outbox keeps what it sent: the key's own record there goes too (sent or not; an
    # unsent one would only publish a key whose tombstone follows).
    await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.topic == REGISTRY_PERSON_KEYS,
            OutboxMessage.event_type == PersonKeyPublished.event_type(),
            OutboxMessage.aggregate_id.in_([str(i) for i in ids]),
        )
    )
    # A tombstone for every shared id, held or not: a key published before this registry's
    # database was restored from a backup still goes.
    for participant_id in sorted(ids | held):
        add_event(session, PersonKeyDestroyed(participant_id=participant_id))


async def keys_for_the_shared(*, session: AsyncSession) -> int:
    """Make the keys of every shared, non-erased person who has none (people shared before
    crypto-shredding); returns how many were made. Their PersonKeyPublished go to the outbox."""
    ids = set(
        await session.scalars(
            select(Inmate.id).where(Inmate.shared_at.is_not(None), Inmate.erased_at.is_(None))
        )
    )
    held = set(await session.scalars(select(PersonKeyRow.participant_id)))
    await person_keys(session=session, participant_ids=ids - held)
    return len(ids - held)


async def key_of(*, session: AsyncSession, participant_id: uuid.UUID) -> PersonKey | None:
    """The person's key if they have one (None: erased, or never shared)."""
    row = await session.get(PersonKeyRow, participant_id)
    return None if row is None else PersonKey(kid=str(participant_id), secret=row.secret)
