"""Reporting's batch handlers leave exactly what its one-event handlers leave, event by event.

Each history is applied twice, on two fresh databases: a prelude (one by one, the same on
both) that leaves people merged, chained through two merges, erased, and enrolments and
certificates already known; then the events under test, once as one batch through the batch
handler and once one by one (a transaction each) through the one-event handler. Every
projection table must then be identical, row for row. The events under test repeat entities
inside the batch, arrive out of order (late "enrolled" after an outcome, older event times),
and name merged and erased people.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bekal.reporting.generations import PROJECTION_MODELS
from bekal.reporting.handlers import subscriptions
from bekal.reporting.models import (
    STATE_ROW_ID,
    Certificate,
    Enrollment,
    Participant,
    ProjectionState,
)
from bekal.reporting.services.people import ERASURE_KEY_RESOURCE, ErasureKey
from bekal.shared.db import Database
from bekal.shared.events import catalogue
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import (
    CertificateIssued,
    EnrollmentOutcome,
    EnrollmentWithdrawn,
    FollowUpSituation,
    InmateReleased,
    InmateShared,
    InmatesMerged,
    OutcomeCorrected,
    ParticipantCompleted,
    ParticipantEnrolled,
    ParticipantNotCompleted,
    Sex,
    WithdrawalReason,
)
from bekal.shared.events.envelope import EventMeta
from bekal.shared.messaging.consumer import (
    BatchContext,
    ConsumerRunner,
    Delivered,
    HandlerContext,
)
from bekal.shared.messaging.kafka import ensure_topics, make_consumer, make_producer
from bekal.shared.messaging.models import InboxMessage
from bekal.shared.migrations import upgrade
from tests.support.db import count
from tests.support.factories import (
    certificate_issued,
    certificate_reissued,
    enrollment_withdrawn,
    follow_up_recorded,
    inmate_erased,
    inmate_released,
    inmate_shared,
    inmates_merged,
    outcome_corrected,
    participant_completed,
    participant_enrolled,
    participant_not_completed,
)
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
# The handlers' erasure key (the service derives it from PUBLICATION_SECRET).
KEY = ErasureKey("the tests' publication secret")
RESOURCES = {ERASURE_KEY_RESOURCE: KEY}


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


Timed = tuple[Event, datetime | None]


def _meta(event: Event, time: datetime | None) -> EventMeta:
    return EventMeta(
        id=str(uuid.uuid4()),
        type=event.event_type(),
        source="/test",
        subject=event.aggregate_id,
        time=time,
    )


async def _one_by_one(db: Database, events: Sequence[Timed]) -> None:
    """Each event through its one-event handler, in a transaction of its own."""
    for event, time in events:
        async with db.session() as s:
            handler = subscriptions.handlers[event.event_type()]
            await handler(
                event, HandlerContext(session=s, meta=_meta(event, time), resources=RESOURCES)
            )
            await s.commit()


async def _as_one_batch(db: Database, events: Sequence[Timed]) -> None:
    """All events through their (one, common) batch handler, in one transaction."""
    handlers = {subscriptions.batch_handlers[e.event_type()] for e, _ in events}
    assert len(handlers) == 1, "the events under test share one batch handler"
    async with db.session() as s:
        await handlers.pop()(
            [Delivered(event, _meta(event, time)) for event, time in events],
            BatchContext(session=s, resources=RESOURCES),
        )
        await s.commit()


async def _tables(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection table's rows, ordered by primary key."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with db.session() as s:
        for model in PROJECTION_MODELS:
            table = model.__table__
            rows = await s.execute(select(table).order_by(*table.primary_key.columns))
            out[table.name] = [tuple(row) for row in rows]
    return out


async def _both_ways(
    urls: tuple[str, str], prelude: Sequence[Timed], events: Sequence[Timed]
) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, list[tuple[Any, ...]]]]:
    """(tables after the batch, tables after one by one), each on its own fresh database."""
    results = []
    for url, apply in zip(urls, (_as_one_batch, _one_by_one), strict=True):
        await asyncio.to_thread(upgrade, "bekal.reporting", url)
        db = Database(url)
        try:
            await _one_by_one(db, prelude)
            await apply(db, events)
            results.append(await _tables(db))
        finally:
            await db.dispose()
    return results[0], results[1]


def shared(person: uuid.UUID, *, sex: Sex = Sex.FEMALE, born: int = 1990) -> InmateShared:
    return inmate_shared(participant_id=person, sex=sex, birth_year=born)


def merged(old: uuid.UUID, survivor: uuid.UUID) -> InmatesMerged:
    return inmates_merged(old, survivor, merged_on=date(2025, 1, 1))


class People:
    """A shared person, one merged into them, a chain (A → B → C) and an erased person."""

    def __init__(self) -> None:
        self.kept, self.old = uuid.uuid4(), uuid.uuid4()
        self.a, self.b, self.c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        self.erased = uuid.uuid4()

    def prelude(self) -> list[Timed]:
        return [
            (shared(self.kept), at(0)),
            (shared(self.old, born=1991), at(1)),
            (merged(self.old, self.kept), at(2)),
            *[(shared(p), at(3)) for p in (self.a, self.b, self.c)],
            (merged(self.a, self.b), at(4)),
            (merged(self.b, self.c), at(5)),
            (shared(self.erased), at(6)),
            (inmate_erased(self.erased), at(7)),
        ]


def _state(tables: dict[str, list[tuple[Any, ...]]]) -> datetime | None:
    (row,) = tables[ProjectionState.__tablename__]
    assert row[0] == STATE_ROW_ID
    value: datetime | None = row[1]
    return value


def _row(tables: dict[str, list[tuple[Any, ...]]], model: Any, key: uuid.UUID) -> tuple[Any, ...]:
    (row,) = [r for r in tables[model.__tablename__] if r[0] == key]
    return row


async def test_shares_of_people_as_one_batch_leave_what_they_leave_one_by_one(two_databases):
    people = People()
    new = uuid.uuid4()
    events: list[Timed] = [
        (shared(people.kept, sex=Sex.MALE, born=1980), at(30)),
        (shared(new, born=1985), at(20)),
        (shared(new, born=1986), at(90)),  # the same person twice in the batch: the later wins
        (shared(people.old, born=1970), None),  # merged away: ignored
        # erased: the sex only, on the person's anonymous row
        (shared(people.erased, sex=Sex.MALE, born=1970), at(10)),
        (shared(people.a, born=1970), at(11)),  # merged (first of a chain): ignored
        (shared(people.c, born=1999), at(40)),  # the end of the chain: applied
        (shared(people.kept, sex=Sex.FEMALE, born=1981), at(25)),  # older time, still applied
    ]
    batch, one_by_one = await _both_ways(two_databases, people.prelude(), events)

    assert batch == one_by_one
    assert _row(batch, Participant, people.kept)[1:3] == ("F", 1981)
    assert _row(batch, Participant, new)[1:3] == ("F", 1986)
    assert _row(batch, Participant, people.c)[2] == 1999
    ids = {r[0] for r in batch[Participant.__tablename__]}
    assert not ids & {people.old, people.erased, people.a, people.b}
    assert _row(batch, Participant, KEY.anonymous(people.erased))[1:3] == ("M", None)
    assert _state(batch) == at(90)


def released(person: uuid.UUID, on: date) -> InmateReleased:
    return inmate_released(participant_id=person, released_on=on)


async def test_releases_as_one_batch_leave_what_they_leave_one_by_one(two_databases):
    people = People()
    unknown = uuid.uuid4()  # released before any share of theirs arrived
    events: list[Timed] = [
        (released(people.kept, date(2025, 2, 1)), at(30)),
        (released(people.old, date(2025, 2, 2)), at(31)),  # merged away: the survivor's row
        (released(people.a, date(2025, 2, 3)), None),  # the start of a chain: its end's row
        (released(people.erased, date(2025, 2, 4)), at(32)),  # anonymous: released, no date
        (released(unknown, date(2025, 2, 5)), at(10)),  # older time, still applied
        (released(unknown, date(2025, 2, 6)), at(33)),  # the same person again: the later wins
    ]
    batch, one_by_one = await _both_ways(two_databases, people.prelude(), events)

    assert batch == one_by_one
    assert _row(batch, Participant, people.kept)[3:5] == (date(2025, 2, 2), True)
    assert _row(batch, Participant, people.c)[3:5] == (date(2025, 2, 3), True)
    assert _row(batch, Participant, KEY.anonymous(people.erased))[3:5] == (None, True)
    assert _row(batch, Participant, unknown)[1:5] == (None, None, date(2025, 2, 6), True)
    ids = {r[0] for r in batch[Participant.__tablename__]}
    assert not ids & {people.old, people.erased, people.a, people.b}
    assert _state(batch) == at(33)


def _enrolled(enrolment: uuid.UUID, session: uuid.UUID, person: uuid.UUID) -> ParticipantEnrolled:
    return participant_enrolled(
        session, person, enrollment_id=enrolment, enrolled_on=date(2025, 2, 3)
    )


def _follow_up(enrolment: ParticipantEnrolled, months: int, on: date, situation: str) -> Any:
    return follow_up_recorded(
        enrolment,
        checkpoint_months=months,
        recorded_on=on,
        situation=FollowUpSituation(situation),
    )


async def test_follow_ups_as_one_batch_leave_what_they_leave_one_by_one(two_databases):
    people = People()
    s = uuid.uuid4()
    known = _enrolled(uuid.uuid4(), s, people.kept)
    unknown_merged = _enrolled(uuid.uuid4(), s, people.a)  # not seen yet; its person merged
    unknown_erased = _enrolled(uuid.uuid4(), s, people.erased)  # not seen yet; person erased
    prelude = [*people.prelude(), (known, at(8))]
    events: list[Timed] = [
        (_follow_up(known, 3, date(2025, 5, 1), "employed_by_ikm"), at(20)),
        (_follow_up(known, 6, date(2025, 8, 1), "business_started_with_nib"), at(21)),
        (
            _follow_up(known, 3, date(2025, 9, 1), "not_working"),
            None,
        ),  # earlier checkpoint: kept out
        (_follow_up(unknown_merged, 3, date(2025, 5, 2), "not_working"), at(9)),
        (_follow_up(unknown_merged, 3, date(2025, 5, 9), "unreachable"), at(22)),  # later: wins
        (_follow_up(unknown_erased, 12, date(2026, 2, 1), "employed_by_ikm"), at(23)),
    ]
    batch, one_by_one = await _both_ways(two_databases, prelude, events)

    assert batch == one_by_one
    columns = list(Enrollment.__table__.columns.keys())

    def follow_up(enrolment: ParticipantEnrolled) -> tuple[Any, ...]:
        row = _row(batch, Enrollment, enrolment.enrollment_id)
        return tuple(
            row[columns.index(c)]
            for c in (
                "participant_id",
                "follow_up_situation",
                "follow_up_checkpoint",
                "follow_up_on",
            )
        )

    assert follow_up(known) == (people.kept, "business_started_with_nib", 6, date(2025, 8, 1))
    assert follow_up(unknown_merged) == (people.c, "unreachable", 3, date(2025, 5, 9))
    assert follow_up(unknown_erased) == (
        KEY.anonymous(people.erased),
        "employed_by_ikm",
        12,
        date(2026, 2, 1),
    )
    assert _state(batch) == at(23)


def _completed(
    enrolment: uuid.UUID, session: uuid.UUID, person: uuid.UUID, *, end: date = date(2025, 2, 7)
) -> ParticipantCompleted:
    return participant_completed(
        _enrolled(enrolment, session, person),
        program_id=uuid.UUID(int=7),
        end_date=end,
    )


def _not_completed(
    enrolment: uuid.UUID, session: uuid.UUID, person: uuid.UUID
) -> ParticipantNotCompleted:
    return participant_not_completed(_enrolled(enrolment, session, person), attendance_share=0.5)


def _withdrawn(
    enrolment: uuid.UUID,
    session: uuid.UUID,
    person: uuid.UUID,
    *,
    into: uuid.UUID | None = None,
) -> EnrollmentWithdrawn:
    return enrollment_withdrawn(
        _enrolled(enrolment, session, person),
        reason=WithdrawalReason.RELEASED if into is None else WithdrawalReason.OTHER,
        withdrawn_on=date(2025, 2, 5),
        merged_into_enrollment_id=into,
    )


def _corrected(
    enrolment: uuid.UUID, session: uuid.UUID, person: uuid.UUID, outcome: EnrollmentOutcome
) -> OutcomeCorrected:
    return outcome_corrected(
        _enrolled(enrolment, session, person),
        outcome,
        reason="salah input",
        corrected_on=date(2025, 2, 20),
    )


async def test_enrolment_events_as_one_batch_leave_what_they_leave_one_by_one(two_databases):
    people = People()
    s = uuid.uuid4()
    known_enrolled, known_completed = uuid.uuid4(), uuid.uuid4()
    x = {name: uuid.uuid4() for name in ("chain", "erased", "folded", "kept", "flip", "old")}
    new_person = uuid.uuid4()
    prelude = [
        *people.prelude(),
        (_enrolled(known_enrolled, s, people.kept), at(8)),
        (_enrolled(known_completed, s, people.kept), at(8)),
        (_completed(known_completed, s, people.kept), at(9)),
    ]
    events: list[Timed] = [
        (_enrolled(x["chain"], s, people.a), at(20)),  # filed under C, two merges on
        (_withdrawn(known_enrolled, s, people.kept), at(21)),
        (_completed(x["chain"], s, people.a), at(22)),
        (_enrolled(x["erased"], s, people.erased), at(12)),  # erased: an anonymous id
        (_enrolled(x["chain"], s, people.a), at(15)),  # a late "enrolled": the outcome stays
        (_enrolled(known_completed, s, people.kept), None),  # the same, for a known row
        (_not_completed(x["erased"], s, people.erased), at(23)),
        (_enrolled(x["kept"], s, new_person), at(24)),
        (_enrolled(x["folded"], s, people.old), at(24)),  # merged away: filed under the kept
        (_withdrawn(x["folded"], s, people.kept, into=x["kept"]), at(25)),
        (_completed(x["folded"], s, people.kept), at(26)),  # late: the folded stays merged
        (_corrected(known_completed, s, people.kept, EnrollmentOutcome.NOT_COMPLETED), at(27)),
        (_completed(x["flip"], s, new_person, end=date(2024, 12, 20)), at(28)),  # no enrol
        (_not_completed(x["flip"], s, new_person), at(29)),
        (_corrected(x["flip"], s, new_person, EnrollmentOutcome.COMPLETED), at(30)),
        (_withdrawn(x["old"], s, people.b), at(11)),  # the oldest time comes last
    ]
    batch, one_by_one = await _both_ways(two_databases, prelude, events)

    assert batch == one_by_one
    e = Enrollment.__table__.c
    col = {name: i for i, name in enumerate(c.name for c in e)}

    def enrolment(key: uuid.UUID) -> dict[str, Any]:
        row = _row(batch, Enrollment, key)
        return {name: row[i] for name, i in col.items()}

    assert enrolment(x["chain"])["participant_id"] == people.c
    assert enrolment(x["chain"])["status"] == "completed"
    assert enrolment(x["old"])["participant_id"] == people.c
    assert enrolment(x["erased"])["participant_id"] == KEY.anonymous(people.erased)
    assert enrolment(x["erased"])["status"] == "not_completed"
    assert enrolment(x["folded"])["participant_id"] == people.kept
    assert enrolment(x["folded"])["status"] == "merged"
    assert enrolment(known_enrolled)["status"] == "withdrawn"
    known = enrolment(known_completed)
    assert (known["status"], known["not_completed_reason"]) == (
        "not_completed",
        "competencies_not_met",
    )
    flip = enrolment(x["flip"])
    assert (flip["status"], flip["not_completed_reason"], flip["year"]) == ("completed", None, 2024)
    assert _state(batch) == at(30)


def _issued(
    certificate: uuid.UUID, enrolment: uuid.UUID, person: uuid.UUID, number: str
) -> CertificateIssued:
    return certificate_issued(
        _enrolled(enrolment, uuid.UUID(int=3), person),
        certificate_id=certificate,
        number=number,
        program_id=uuid.UUID(int=7),
        issued_on=date(2025, 2, 21),
    )


async def test_certificates_as_one_batch_leave_what_they_leave_one_by_one(two_databases):
    people = People()
    c = {name: uuid.uuid4() for name in ("known", "merged", "erased", "new", "reissued")}
    enrolment = {name: uuid.uuid4() for name in c}
    prelude = [
        *people.prelude(),
        (_issued(c["known"], enrolment["known"], people.kept, "BKL-1"), at(8)),
    ]
    events: list[Timed] = [
        (_issued(c["known"], enrolment["known"], people.kept, "BKL-1-AGAIN"), at(20)),
        (_issued(c["merged"], enrolment["merged"], people.a, "BKL-2"), at(21)),
        (_issued(c["merged"], enrolment["merged"], people.a, "BKL-2-AGAIN"), at(22)),
        (_issued(c["erased"], enrolment["erased"], people.erased, "BKL-3"), None),
        (_issued(c["new"], enrolment["new"], uuid.uuid4(), "BKL-4"), at(9)),
        (
            certificate_reissued(
                _issued(c["known"], enrolment["known"], people.old, "BKL-1"),
                certificate_id=c["reissued"],
                number="BKL-5",
                issued_on=date(2025, 2, 22),
            ),
            at(23),
        ),
    ]
    batch, one_by_one = await _both_ways(two_databases, prelude, events)

    assert batch == one_by_one
    assert len(batch[Certificate.__tablename__]) == 5
    assert _row(batch, Certificate, c["known"])[1] == "BKL-1"  # immutable: the first stays
    merged_row = _row(batch, Certificate, c["merged"])
    assert (merged_row[1], merged_row[4]) == ("BKL-2", people.c)
    assert _row(batch, Certificate, c["erased"])[4] == KEY.anonymous(people.erased)
    assert _row(batch, Certificate, c["reissued"])[4] == people.kept
    assert _state(batch) == at(23)


async def test_the_consumer_applies_a_fetched_batch_through_the_batch_handler(
    database_url, broker, make_settings, monkeypatch
):
    """The real runner on the real broker: consecutive shares reach the batch handler together,
    and the projection holds every person once."""
    settings = make_settings("reporting", database_url, broker, kafka_topic_partitions=1)
    await asyncio.to_thread(upgrade, "bekal.reporting", database_url)
    db = Database(database_url)
    calls: list[int] = []
    batch_handler = subscriptions.batch_handlers[InmateShared.event_type()]

    async def counting(items: Sequence[Delivered[Any]], ctx: BatchContext) -> None:
        calls.append(len(items))
        await batch_handler(items, ctx)

    monkeypatch.setitem(subscriptions.batch_handlers, InmateShared.event_type(), counting)
    people = [uuid.uuid4() for _ in range(40)]
    events = [shared(p, born=1980 + i % 20) for i, p in enumerate(people)]
    events.append(shared(people[0], born=2001))  # shared again: the later one counts
    times = [at(i) for i in range(len(events))]
    await ensure_topics(settings, [*subscriptions.topics, subscriptions.dead_letter_topic])
    await publish(settings, events, times=times)
    producer = make_producer(settings)
    await producer.start()
    consumer = make_consumer(settings, subscriptions.group_id, subscriptions.topics)
    await consumer.start()
    runner = ConsumerRunner(
        subscriptions=subscriptions,
        registry=catalogue,
        db=db,
        settings=settings,
        consumer=consumer,
        dlq_producer=producer,
        resources=RESOURCES,
    )
    runner.start()
    try:

        async def applied() -> bool:
            return await count(db, InboxMessage) >= len(events)

        await wait_until(applied, within=60, what="shares applied")
    finally:
        await runner.stop()
        await consumer.stop()
        await producer.stop()
    try:
        assert runner.processed == len(events)
        assert sum(calls) == len(events)
        assert max(calls) > 1  # at least one call got several events at once
        assert await count(db, Participant) == len(people)
        async with db.session() as s:
            assert await s.get(Participant, people[0]) is not None
            born = await s.scalar(select(Participant.birth_year).where(Participant.id == people[0]))
            state = await s.get(ProjectionState, STATE_ROW_ID)
            # The birth year travels sealed, and reporting reads no person keys: never held.
            assert born is None
            assert state is not None and state.data_as_of == times[-1]
    finally:
        await db.dispose()
