"""Training's record of a person's temporary absences ends each one at its return, whatever
order the registry's two events reach it in.

One person's events are delivered in order, but an absence that went to the dead-letter topic
and is retried by an operator comes after the return that ended it. Before returns were kept,
such an absence stayed open for good, and every later day of a course was judged as a day away.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from bekal.shared.db import Database
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import (
    AbsenceReason,
    InmateReturned,
    InmateShared,
    InmatesMerged,
    InmateTemporarilyAbsent,
)
from bekal.shared.migrations import upgrade
from bekal.training.services import merges, replica
from bekal.training.services.attendance import absences_of
from tests.support.factories import (
    inmate_returned,
    inmate_shared,
    inmate_temporarily_absent,
    inmates_merged,
)

pytestmark = pytest.mark.integration

T0 = datetime(2024, 9, 1, 8, 0, tzinfo=UTC)
D = date(2024, 9, 2)
COURT, BACK, HOSPITAL, HOME = D, D + timedelta(days=1), D + timedelta(days=3), D + timedelta(days=5)


async def _replica(url: str) -> Database:
    await asyncio.to_thread(upgrade, "bekal.training", url)
    return Database(url)


async def _deliver(db: Database, *steps: tuple[Event, datetime]) -> None:
    """Each event in its own transaction, as the consumer applies them, with its event time."""
    for event, at in steps:
        async with db.session() as session:
            if isinstance(event, InmateShared):
                await replica.apply_inmates_shared(session=session, events=[(event, at)])
            elif isinstance(event, InmateTemporarilyAbsent):
                await replica.apply_inmate_absent(session=session, event=event, as_of=at)
            elif isinstance(event, InmateReturned):
                await replica.apply_inmate_returned(session=session, event=event, as_of=at)
            else:
                assert isinstance(event, InmatesMerged)
                await merges.apply_inmates_merged(session=session, event=event)
            await session.commit()


def _story(person: InmateShared) -> dict[str, tuple[Event, datetime]]:
    """Court on day 1, back on day 2; hospital on day 4, home on day 6: as the registry stamped
    them."""
    return {
        "court": (
            inmate_temporarily_absent(person, absent_from=COURT, reason=AbsenceReason.COURT),
            T0 + timedelta(hours=1),
        ),
        "back": (inmate_returned(person, returned_on=BACK), T0 + timedelta(hours=2)),
        "hospital": (
            inmate_temporarily_absent(person, absent_from=HOSPITAL, reason=AbsenceReason.HOSPITAL),
            T0 + timedelta(hours=3),
        ),
        "home": (inmate_returned(person, returned_on=HOME), T0 + timedelta(hours=4)),
    }


@pytest.mark.parametrize(
    "order",
    [
        ("court", "back", "hospital", "home"),  # as it happened
        ("back", "court", "hospital", "home"),  # the court absence retried after its return
        ("hospital", "home", "court", "back"),  # the first absence and return retried last
        ("home", "hospital", "back", "court"),  # each return before its absence
        ("back", "home", "hospital", "court"),  # both returns first
        ("court", "back", "court", "back", "hospital", "home", "home"),  # redelivered
    ],
)
async def test_each_absence_ends_at_its_own_return_whatever_the_order(
    database_url: str, order: tuple[str, ...]
) -> None:
    db = await _replica(database_url)
    try:
        person = inmate_shared()
        story = _story(person)
        await _deliver(db, (person, T0), *(story[name] for name in order))
        async with db.session() as session:
            periods = await absences_of(session=session, participant_ids=[person.participant_id])
        assert periods[person.participant_id] == [(COURT, BACK), (HOSPITAL, HOME)]
    finally:
        await db.dispose()


async def test_an_absence_with_no_return_yet_stays_open(database_url: str) -> None:
    db = await _replica(database_url)
    try:
        person = inmate_shared()
        story = _story(person)
        await _deliver(db, (person, T0), story["back"], story["court"], story["hospital"])
        async with db.session() as session:
            periods = await absences_of(session=session, participant_ids=[person.participant_id])
        assert periods[person.participant_id] == [(COURT, BACK), (HOSPITAL, None)]
    finally:
        await db.dispose()


async def test_a_merged_records_return_closes_the_survivors_late_absence(
    database_url: str,
) -> None:
    """The old record's return moves to the survivor with its absences; an absence of the old
    record that arrives after the merge is routed to the survivor and closed by it."""
    db = await _replica(database_url)
    try:
        old, survivor = inmate_shared(), inmate_shared()
        story = _story(old)
        await _deliver(
            db,
            (old, T0),
            (survivor, T0),
            story["back"],
            (inmates_merged(old, survivor), T0 + timedelta(hours=5)),
        )
        # The late absence names the old id; the handler routes it to the survivor.
        late, at = story["court"]
        assert isinstance(late, InmateTemporarilyAbsent)
        await _deliver(
            db, (late.model_copy(update={"participant_id": survivor.participant_id}), at)
        )
        async with db.session() as session:
            periods = await absences_of(
                session=session, participant_ids=[old.participant_id, survivor.participant_id]
            )
        assert periods[survivor.participant_id] == [(COURT, BACK)]
        assert periods[old.participant_id] == []
    finally:
        await db.dispose()
