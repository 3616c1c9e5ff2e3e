"""Training's replica of the registry, fed a batch at a time: the same rows as one by one.

The consumer hands consecutive ``InmateShared`` events of a fetched batch to one handler, which
reads what they need with two statements. Whatever the batch holds (the same person twice,
an event older than the row, a merged-away id), the replica must end as it would after
applying the events one at a time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import delete, select

from bekal.shared.db import Database
from bekal.shared.events.catalogue import (
    EnrollmentWithdrawn,
    InmateReleased,
    InmateShared,
    ReleaseKind,
    Sex,
)
from bekal.shared.events.envelope import EventMeta
from bekal.shared.messaging.consumer import BatchContext, Delivered
from bekal.shared.messaging.models import OutboxMessage
from bekal.shared.migrations import upgrade
from bekal.training.handlers import on_inmates_released, on_inmates_shared
from bekal.training.models import (
    Enrollment,
    MergedParticipant,
    Participant,
    Program,
    TrainingSession,
)
from bekal.training.services import replica
from tests.support.factories import inmate_released, inmate_shared

pytestmark = pytest.mark.integration

T = TypeVar("T")

T0 = datetime(2024, 9, 1, 8, 0, tzinfo=UTC)
FACILITY = uuid.uuid4()
EXISTING = uuid.uuid4()  # already in the replica, as of T0 + 2 h
MERGED = uuid.uuid4()  # merged away into EXISTING before this batch
NEW = uuid.uuid4()
LATE = uuid.uuid4()


def shared(pid: uuid.UUID, name: str, release: date | None = None) -> InmateShared:
    return inmate_shared(
        participant_id=pid,
        full_name=name,
        sex=Sex.FEMALE,
        facility_id=FACILITY,
        admission_date=date(2023, 1, 5),
        expected_release_date=release,
    )


def delivered(event: InmateShared, hours: int) -> Delivered[InmateShared]:
    meta = EventMeta(
        id=str(uuid.uuid4()),
        type=InmateShared.event_type(),
        source="/corrections/registry",
        subject=str(event.participant_id),
        time=T0 + timedelta(hours=hours),
        traceparent=None,
    )
    return Delivered(event, meta)


BATCH = [
    delivered(shared(NEW, "Siti Rahmawati"), 1),
    delivered(shared(EXISTING, "Nama Lama"), 1),  # older than the row: changes nothing
    delivered(shared(MERGED, "Dewi Lestari"), 3),  # merged away: ignored
    delivered(shared(LATE, "Rina Wati", date(2025, 3, 1)), 5),
    delivered(shared(NEW, "Siti Rahmawati", date(2025, 6, 30)), 4),  # the same person, later
    delivered(shared(LATE, "Rina W.", date(2024, 12, 1)), 2),  # older than the one before it
    delivered(shared(EXISTING, "Dewi Lestari", date(2025, 1, 15)), 6),
]


def _in_custody(pid: uuid.UUID, name: str, as_of: datetime) -> Participant:
    return Participant(
        id=pid,
        full_name=name,
        sex="F",
        birth_year=1990,
        facility_id=FACILITY,
        status="in_custody",
        admission_date=date(2023, 1, 5),
        as_of=as_of,
    )


async def _seed(db: Database) -> None:
    async with db.session() as s:
        await s.execute(delete(Participant))
        await s.execute(delete(MergedParticipant))
        s.add(_in_custody(EXISTING, "Dewi L.", T0 + timedelta(hours=2)))
        s.add(MergedParticipant(id=MERGED, surviving_id=EXISTING, merged_on=date(2024, 8, 1)))
        await s.commit()


async def _replica(db: Database) -> dict[uuid.UUID, dict[str, Any]]:
    async with db.session() as s:
        rows = await s.scalars(select(Participant))
        return {
            r.id: {
                c.key: getattr(r, c.key)
                for c in Participant.__table__.columns
                if c.key != "updated_at"
            }
            for r in rows
        }


async def _as_one_batch_and_one_by_one(
    database_url: str,
    seed: Callable[[Database], Awaitable[None]],
    handler: Callable[[Sequence[Delivered[Any]], BatchContext], Awaitable[None]],
    items: Sequence[Delivered[Any]],
    read: Callable[[Database], Awaitable[T]],
) -> tuple[T, T]:
    """What ``read`` finds after ``items`` went through the batch handler as one batch, and
    then (seeded again) as batches of one, a transaction each, as the one-event handler does."""
    await asyncio.to_thread(upgrade, "bekal.training", database_url)
    db = Database(database_url)
    found: list[T] = []
    try:
        for batches in ([items], [[item] for item in items]):
            await seed(db)
            for batch in batches:
                async with db.session() as s:
                    await handler(batch, BatchContext(s))
                    await s.commit()
            found.append(await read(db))
    finally:
        await db.dispose()
    return found[0], found[1]


async def test_a_batch_of_shares_leaves_the_replica_as_one_by_one_would(database_url: str):
    together, one_by_one = await _as_one_batch_and_one_by_one(
        database_url, _seed, on_inmates_shared, BATCH, _replica
    )

    assert together == one_by_one
    assert set(together) == {EXISTING, NEW, LATE}  # the merged-away id never came back
    assert together[NEW]["expected_release_date"] == date(2025, 6, 30)
    assert together[LATE]["full_name"] == "Rina Wati"  # the older event lost
    assert together[LATE]["expected_release_date"] == date(2025, 3, 1)
    assert together[EXISTING]["full_name"] == "Dewi Lestari"
    assert together[EXISTING]["as_of"] == T0 + timedelta(hours=6)


@pytest.mark.parametrize(("share_hours", "share_applies"), [(4, True), (2, False)])
async def test_shares_after_a_release_in_the_same_transaction_see_the_release(
    database_url: str, share_hours: int, share_applies: bool
):
    """A fetch can hold a release (applied one event at a time) and then shares of the person.

    The shares are written with one statement against the stored rows: the release left
    pending before them must count, and what the transaction reads afterwards is the table.
    """
    await asyncio.to_thread(upgrade, "bekal.training", database_url)
    db = Database(database_url)
    release = inmate_released(
        participant_id=EXISTING,
        facility_id=FACILITY,
        release_kind=ReleaseKind.PAROLE,
        released_on=date(2024, 9, 1),
    )
    try:
        await _seed(db)
        async with db.session() as s:
            await replica.apply_inmates_released(
                session=s, events=[(release, T0 + timedelta(hours=3))]
            )
            held = await s.get(Participant, EXISTING)  # a row the transaction keeps hold of
            await on_inmates_shared(
                [delivered(shared(EXISTING, "Dewi Lestari"), share_hours)], BatchContext(s)
            )
            seen = await s.get(Participant, EXISTING)
            assert seen is not None and seen is held
            in_transaction = (seen.status, seen.full_name, seen.as_of)
            await s.commit()
        stored = (await _replica(db))[EXISTING]
    finally:
        await db.dispose()

    expected_name, expected_as_of = (
        ("Dewi Lestari", T0 + timedelta(hours=4))
        if share_applies
        else ("Dewi L.", T0 + timedelta(hours=3))
    )
    assert in_transaction == ("released", expected_name, expected_as_of)
    assert (stored["status"], stored["full_name"], stored["as_of"]) == in_transaction
    assert stored["release_kind"] == "parole"


# --- releases ------------------------------------------------------------------------------

SESSION = uuid.uuid4()
SEATED, QUEUED, NEVER_ENROLLED = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
MERGED_SEATED = uuid.uuid4()  # merged away into SEATED before this batch


def released_at(pid: uuid.UUID, on: date, hours: int) -> Delivered[InmateReleased]:
    event = inmate_released(
        participant_id=pid, facility_id=FACILITY, release_kind=ReleaseKind.FREE, released_on=on
    )
    meta = EventMeta(
        id=str(uuid.uuid4()),
        type=InmateReleased.event_type(),
        source="/corrections/registry",
        subject=str(pid),
        time=T0 + timedelta(hours=hours),
        traceparent=None,
    )
    return Delivered(event, meta)


RELEASES = [
    released_at(NEVER_ENROLLED, date(2024, 9, 2), 3),
    released_at(MERGED_SEATED, date(2024, 9, 3), 4),  # routed to SEATED: seat freed, queue moves
    released_at(EXISTING, date(2024, 9, 4), 1),  # older than the row: row kept as it is
    released_at(QUEUED, date(2024, 9, 5), 5),  # now seated (moved up): withdrawn in turn
    released_at(SEATED, date(2024, 9, 6), 6),  # again, nothing live left: nothing published
    released_at(uuid.uuid4(), date(2024, 9, 7), 7),  # not in the replica at all
]


async def _seed_course(db: Database) -> None:
    """The replica of ``_seed`` plus three people and a running session of one seat: SEATED
    holds it, QUEUED waits for it."""
    await _seed(db)
    async with db.session() as s:
        for table in (OutboxMessage, Enrollment, TrainingSession, Program):
            await s.execute(delete(table))
        s.add_all(_in_custody(pid, "Peserta", T0) for pid in (SEATED, QUEUED, NEVER_ENROLLED))
        s.add(MergedParticipant(id=MERGED_SEATED, surviving_id=SEATED, merged_on=date(2024, 8, 2)))
        program = Program(
            code="WUB-BATIK",
            title="Batik",
            sector="batik",
            days=5,
            hours=40,
            min_attendance_share=0.8,
            competency_units=[{"code": "BTK-01", "title": "Membatik"}],
        )
        s.add(program)
        await s.flush()
        s.add(
            TrainingSession(
                id=SESSION,
                program_id=program.id,
                program_version=1,
                program_code=program.code,
                program_title=program.title,
                sector=program.sector,
                hours=40,
                min_attendance_share=0.8,
                competency_units=program.competency_units,
                facility_id=FACILITY,
                start_date=date(2024, 9, 2),
                end_date=date(2024, 9, 6),
                capacity=1,
                status="running",
                instructors=[],
            )
        )
        await s.flush()
        for pid, status, minutes in ((SEATED, "enrolled", 0), (QUEUED, "waitlisted", 1)):
            s.add(
                Enrollment(
                    session_id=SESSION,
                    participant_id=pid,
                    status=status,
                    enrolled_on=date(2024, 8, 20),
                    created_at=T0 + timedelta(minutes=minutes),
                )
            )
        await s.commit()


async def _course(db: Database) -> tuple[dict[uuid.UUID, dict[str, Any]], list[Any], list[str]]:
    """The replica, each enrolment (who, status, reason, on), the types of the events published
    in order."""
    async with db.session() as s:
        enrolments = sorted(
            (
                (e.participant_id, e.status, e.withdrawal_reason, e.withdrawn_on)
                for e in await s.scalars(select(Enrollment))
            ),
            key=str,
        )
        published = list(
            await s.scalars(select(OutboxMessage.event_type).order_by(OutboxMessage.seq))
        )
    return await _replica(db), enrolments, published


async def test_a_batch_of_releases_leaves_what_one_by_one_would(database_url: str):
    together, one_by_one = await _as_one_batch_and_one_by_one(
        database_url, _seed_course, on_inmates_released, RELEASES, _course
    )

    assert together == one_by_one
    replica_rows, enrolments, published = together
    assert replica_rows[SEATED]["released_on"] == date(2024, 9, 6)
    assert replica_rows[QUEUED]["status"] == "released"
    assert replica_rows[NEVER_ENROLLED]["released_on"] == date(2024, 9, 2)
    assert replica_rows[EXISTING]["status"] == "in_custody"  # the older release lost
    assert MERGED_SEATED not in replica_rows
    assert enrolments == sorted(
        [
            (SEATED, "withdrawn", "released", date(2024, 9, 3)),
            (QUEUED, "withdrawn", "released", date(2024, 9, 5)),
        ],
        key=str,
    )
    assert published.count(EnrollmentWithdrawn.event_type()) == 2
