"""After an erasure or a consent withdrawal no row of reporting's database links the person's
participant id to what is left of them.

The tombstone and the anonymous id are keyed with a secret the database never holds, so
neither is the participant id nor derivable from it without the secret (as the unkeyed uuid5
ids were); the ids merged into the person go with them; the dead letters naming the person go;
a replay meeting the events in another order leaves the same tables; and tombstones written
before the keys are re-keyed to exactly what the keyed erasure leaves.

The story: P (born 1977) waits for a place, enrols, completes, gets a certificate and is
released; D, a duplicate record of P, completed a course too and is merged into P; O (born 1985)
is enrolled. Then P is erased (or withdraws consent), and the registry erases D with P.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import inspect, select, text, update

from bekal.reporting.generations import PROJECTION_MODELS
from bekal.reporting.handlers import subscriptions
from bekal.reporting.models import (
    Certificate,
    Enrollment,
    ErasedParticipant,
    Participant,
    WaitlistEntry,
)
from bekal.reporting.services import people
from bekal.reporting.services.people import ERASURE_KEY_RESOURCE, ErasureKey
from bekal.shared.db import Database
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import InmatesMerged, Sex
from bekal.shared.events.envelope import EventMeta
from bekal.shared.messaging.consumer import HandlerContext
from bekal.shared.messaging.models import DeadLetter
from bekal.shared.migrations import upgrade
from tests.support.factories import (
    certificate_issued,
    facility_registered,
    inmate_consent_withdrawn,
    inmate_erased,
    inmate_released,
    inmate_shared,
    inmates_merged,
    participant_completed,
    participant_enrolled,
    participant_waitlisted,
    program_published,
    session_scheduled,
)

pytestmark = pytest.mark.integration

KEY = ErasureKey("the tests' publication secret")
RESOURCES = {ERASURE_KEY_RESOURCE: KEY}
# The namespace the anonymous ids were derived in before they were keyed.
UNKEYED_NAMESPACE = uuid.UUID("6f1f3c2e-2b1a-4b8e-9a57-2f0f6f1c0b7d")
AT = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
RELEASED_ON = date(2024, 10, 1)
BORN_P, BORN_O = 1977, 1985


def unkeyed(participant_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(UNKEYED_NAMESPACE, f"erased-person:{participant_id}")


class Story:
    def __init__(self) -> None:
        self.p, self.d, self.o = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        facility = facility_registered()
        program = program_published()
        course = session_scheduled(program, facility)
        self.setting: list[Event] = [facility, program, course]
        self.shares: list[Event] = [
            inmate_shared(participant_id=self.p, sex=Sex.FEMALE, birth_year=BORN_P),
            inmate_shared(participant_id=self.d, sex=Sex.FEMALE, birth_year=BORN_P),
            inmate_shared(participant_id=self.o, sex=Sex.MALE, birth_year=BORN_O),
        ]
        waiting = participant_waitlisted(course, self.p)
        p = participant_enrolled(course, self.p, enrollment_id=waiting.enrollment_id)
        p_done = participant_completed(p, program)
        self.p_facts: list[Event] = [
            waiting,
            p,
            p_done,
            certificate_issued(p_done),
            inmate_released(participant_id=self.p, released_on=RELEASED_ON),
        ]
        d = participant_enrolled(course, self.d)
        d_done = participant_completed(d, program)
        self.d_facts: list[Event] = [d, d_done, certificate_issued(d_done)]
        self.o_facts: list[Event] = [participant_enrolled(course, self.o)]
        self.merge: InmatesMerged = inmates_merged(self.d, self.p)
        # Shares replayed after the erasure, as a new consumer reading the history meets them.
        self.replayed: list[Event] = list(self.shares[:2])

    def erasure(self, *, withdrawn: bool) -> list[Event]:
        first = inmate_consent_withdrawn(self.p) if withdrawn else inmate_erased(self.p)
        return [first, inmate_erased(self.d)]

    def as_lived(self, *, withdrawn: bool = False) -> list[Event]:
        return [
            *self.setting,
            *self.shares,
            *self.d_facts,
            *self.p_facts,
            *self.o_facts,
            self.merge,
            *self.erasure(withdrawn=withdrawn),
            *self.replayed,
        ]

    def as_replayed(self, *, withdrawn: bool = False) -> list[Event]:
        """Another order a rebuild may meet: the registry's topic first (P's erasure before
        the merge, on another partition), training's and certification's facts after it."""
        first, second = self.erasure(withdrawn=withdrawn)
        return [
            *self.setting,
            *self.shares,
            first,
            self.merge,
            second,
            *self.replayed,
            *self.p_facts,
            *self.d_facts,
            *self.o_facts,
        ]


async def _database(url: str) -> Database:
    await asyncio.to_thread(upgrade, "bekal.reporting", url)
    return Database(url)


def _meta(event: Event) -> EventMeta:
    return EventMeta(
        id=str(uuid.uuid4()),
        type=event.event_type(),
        source="/test",
        subject=event.aggregate_id,
        time=AT,
    )


async def _apply(db: Database, events: list[Event]) -> None:
    for event in events:
        async with db.session() as s:
            handler = subscriptions.handlers[event.event_type()]
            await handler(event, HandlerContext(session=s, meta=_meta(event), resources=RESOURCES))
            await s.commit()


async def _every_row(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        return {
            table: [tuple(row) for row in await conn.execute(text(f"SELECT * FROM {table}"))]
            for table in tables
        }


async def _projections(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with db.session() as s:
        for model in PROJECTION_MODELS:
            table = model.__table__
            rows = await s.execute(select(table).order_by(*table.primary_key.columns))
            out[table.name] = [tuple(row) for row in rows]
    return out


def _assert_nothing_leads_back(rows: dict[str, list[tuple[Any, ...]]], story: Story) -> None:
    forbidden = {str(i) for person in (story.p, story.d) for i in (person, unkeyed(person))}
    for table, content in rows.items():
        for row in content:
            found = {str(value) for value in row} & forbidden
            assert not found, (table, row)
            # A dead letter or any text naming the person, inside a longer value.
            assert not any(f in str(value) for value in row for f in forbidden), (table, row)
    for row in rows["participants"]:
        assert BORN_P not in row and RELEASED_ON not in row and str(RELEASED_ON) not in row, row


@pytest.mark.parametrize("withdrawn", [False, True], ids=["erased", "consent-withdrawn"])
async def test_no_row_links_the_erased_persons_id_to_what_is_left_of_them(
    two_databases: tuple[str, str], withdrawn: bool
) -> None:
    story = Story()
    lived, replayed = await _database(two_databases[0]), await _database(two_databases[1])
    try:
        await _apply(lived, story.as_lived(withdrawn=withdrawn))
        rows = await _every_row(lived)
        _assert_nothing_leads_back(rows, story)

        anonymous = KEY.anonymous(story.p)
        async with lived.session() as s:
            # One anonymous person: the sex and "released", no birth year, no date of release.
            row = await s.get(Participant, anonymous)
            assert row is not None
            assert (row.sex, row.birth_year, row.released_on, row.released) == (
                "F",
                None,
                None,
                True,
            )
            # Every fact stays, P's and D's under the one anonymous id, O's under O.
            filed = sorted(str(p) for p in await s.scalars(select(Enrollment.participant_id)))
            assert filed == sorted([str(anonymous)] * 2 + [str(story.o)])
            assert set(await s.scalars(select(Certificate.participant_id))) == {anonymous}
            assert set(await s.scalars(select(WaitlistEntry.participant_id))) == {anonymous}
            o = await s.get(Participant, story.o)
            assert o is not None and o.birth_year == BORN_O
            # The tombstones: keyed, both leading to the one anonymous id.
            tombstones = dict(
                (
                    await s.execute(select(ErasedParticipant.id, ErasedParticipant.anonymous_id))
                ).all()
            )
            assert tombstones == {
                KEY.tombstone(story.p): anonymous,
                KEY.tombstone(story.d): anonymous,
            }
        # Without the key the ids are not the ones derived: another secret, other ids.
        other = ErasureKey("another secret")
        assert {other.tombstone(story.p), other.anonymous(story.p)}.isdisjoint(
            {KEY.tombstone(story.p), anonymous}
        )

        # A replay meeting the events in another order leaves the same projections.
        await _apply(replayed, story.as_replayed(withdrawn=withdrawn))
        _assert_nothing_leads_back(await _every_row(replayed), story)
        assert await _projections(replayed) == await _projections(lived)
    finally:
        await lived.dispose()
        await replayed.dispose()


def _dead_letter(*, key: str | None, value: str | None, headers: dict[str, str]) -> DeadLetter:
    return DeadLetter(
        consumer_group="reporting",
        topic="registry.inmates",
        partition=0,
        offset=1,
        key=key,
        headers=json.dumps(headers),
        value=value,
        event_id=str(uuid.uuid4()),
        event_type="id.bekal.registry.inmate.shared.v1",
        reason="handler_failed",
        error="boom",
        attempts=5,
    )


async def test_the_erasure_deletes_the_dead_letters_naming_the_person_and_keeps_others(
    database_url: str,
) -> None:
    story = Story()
    db = await _database(database_url)
    try:
        await _apply(db, [*story.setting, *story.shares, *story.p_facts, story.merge])
        share_of_p, _, share_of_o = (e.model_dump(mode="json") for e in story.shares)
        async with db.session() as s:
            s.add_all(
                [
                    # An older share, its name in the clear, beside facility and dates.
                    _dead_letter(key=str(story.p), value=json.dumps(share_of_p), headers={}),
                    # Unreadable: the person only in the record's key or its headers.
                    _dead_letter(key=str(story.d), value="{not json", headers={}),
                    _dead_letter(key=None, value=None, headers={"ce_subject": str(story.p)}),
                    _dead_letter(key=str(story.o), value=json.dumps(share_of_o), headers={}),
                ]
            )
            await s.commit()
        await _apply(db, story.erasure(withdrawn=False))
        async with db.session() as s:
            left = list(await s.scalars(select(DeadLetter.key)))
        assert left == [str(story.o)]
    finally:
        await db.dispose()


async def _erase_as_before_the_keys(db: Database, story: Story) -> None:
    """What the erasures left before the ids were keyed: the raw participant ids as tombstones,
    the merge row naming P, P's facts under the uuid5 of P's id."""
    old = unkeyed(story.p)
    async with db.session() as s:
        row = await s.get(Participant, story.p)
        assert row is not None
        s.add(Participant(id=old, sex=row.sex, released=True))
        await s.delete(row)
        await s.flush()
        for model in (Enrollment, Certificate, WaitlistEntry):
            await s.execute(
                update(model).where(model.participant_id == story.p).values(participant_id=old)
            )
        await s.execute(
            text("INSERT INTO erased_participants (id) VALUES (:p), (:d)"),
            {"p": str(story.p), "d": str(story.d)},
        )
        await s.commit()


async def test_tombstones_from_before_the_keys_are_rekeyed_to_what_the_keyed_erasure_leaves(
    two_databases: tuple[str, str],
) -> None:
    story = Story()
    before = [*story.setting, *story.shares, *story.d_facts, *story.p_facts, story.merge]
    keyed, rekeyed = await _database(two_databases[0]), await _database(two_databases[1])
    try:
        await _apply(keyed, [*before, *story.erasure(withdrawn=False)])
        await _apply(rekeyed, before)
        await _erase_as_before_the_keys(rekeyed, story)
        async with rekeyed.session() as s:
            assert await people.key_old_tombstones(session=s, key=KEY) == 2
            await s.commit()
        async with rekeyed.session() as s:
            assert await people.key_old_tombstones(session=s, key=KEY) == 0  # done once
        assert await _projections(rekeyed) == await _projections(keyed)
        # Later shares of the two are treated as erased, as with the keyed erasure.
        for db in (keyed, rekeyed):
            await _apply(db, story.replayed)
            _assert_nothing_leads_back(await _every_row(db), story)
        assert await _projections(rekeyed) == await _projections(keyed)
    finally:
        await keyed.dispose()
        await rekeyed.dispose()


async def test_ids_merged_into_the_person_follow_them_in_either_order(
    two_databases: tuple[str, str],
) -> None:
    """A chain A → B → P: P's erasure alone (before the duplicates' own erasures arrive) leaves
    no row naming A, B or P, whether the merges come before it or after it."""
    a, b, p = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    facility = facility_registered()
    program = program_published()
    course = session_scheduled(program, facility)
    shares = [inmate_shared(participant_id=x, birth_year=BORN_P) for x in (a, b, p)]
    facts = [participant_enrolled(course, x) for x in (a, b, p)]
    chain = [inmates_merged(a, b), inmates_merged(b, p)]
    erased = inmate_erased(p)
    orders = (
        [facility, program, course, *shares, *facts, *chain, erased],
        [facility, program, course, *shares, chain[0], erased, chain[1], *facts],
    )
    dbs = [await _database(url) for url in two_databases]
    try:
        for db, events in zip(dbs, orders, strict=True):
            await _apply(db, events)
            rows = await _every_row(db)
            for table, content in rows.items():
                assert not any(str(x) in repr(content) for x in (a, b, p)), table
            async with db.session() as s:
                filed = set(await s.scalars(select(Enrollment.participant_id)))
                tombstones = dict(
                    (
                        await s.execute(
                            select(ErasedParticipant.id, ErasedParticipant.anonymous_id)
                        )
                    ).all()
                )
            assert filed == {KEY.anonymous(p)}
            assert tombstones == {KEY.tombstone(x): KEY.anonymous(p) for x in (a, b, p)}
        assert await _projections(dbs[0]) == await _projections(dbs[1])
    finally:
        for db in dbs:
            await db.dispose()
