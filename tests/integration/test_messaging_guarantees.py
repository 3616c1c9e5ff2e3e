"""The messaging guarantees, proven against the real broker and real databases.

A failed publish stays in the outbox; a redelivered event has no second effect; a handler that
keeps failing sends its record to the dead-letter topic and the partition goes on; a consumer
stopped mid-stream and restarted loses nothing and doubles nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from aiokafka.errors import ProducerClosed
from sqlalchemy import Integer, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bekal.shared.db import Database, new_metadata
from bekal.shared.events.catalogue import InmateReleased, InmateTemporarilyAbsent
from bekal.shared.messaging.consumer import (
    BatchContext,
    Delivered,
    HandlerContext,
    Subscriptions,
)
from bekal.shared.messaging.kafka import ensure_topics, make_producer
from bekal.shared.messaging.models import DeadLetter, InboxMessage, OutboxMessage
from bekal.shared.messaging.outbox import OutboxRelay, add_event
from bekal.shared.migrations import create_platform_tables
from tests.support.db import count
from tests.support.factories import inmate_released, inmate_temporarily_absent
from tests.support.kafka import publish, records_on
from tests.support.runners import start_runner
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


class Base(DeclarativeBase):
    metadata = new_metadata()


class Effect(Base):
    """One row per handled event: the countable effect."""

    __tablename__ = "effects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[str] = mapped_column(String(36))


async def _prepare(url: str) -> Database:
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(create_platform_tables)
        await conn.run_sync(Base.metadata.create_all)
    return db


def _subscriptions(fail_for: set[str] | None = None, always_fail: bool = False) -> Subscriptions:
    subs = Subscriptions("training")

    @subs.on(InmateReleased)
    async def on_released(event: InmateReleased, ctx: HandlerContext) -> None:
        if always_fail or (fail_for and str(event.participant_id) in fail_for):
            raise ValueError("rule broken on purpose")
        ctx.session.add(Effect(participant_id=str(event.participant_id)))

    return subs


async def test_event_whose_publish_fails_stays_in_outbox_and_is_sent_later(
    database_url, broker, make_settings
):
    settings = make_settings("training", database_url, broker, outbox_publish_timeout_seconds=3)
    db = await _prepare(database_url)
    await ensure_topics(settings, ["registry.inmates"])
    async with db.session() as s:
        event = inmate_released()
        add_event(s, event)
        await s.commit()

    # A producer whose connection is gone: the publish fails.
    bad_producer = make_producer(settings)
    await bad_producer.start()
    await bad_producer.stop()
    relay = OutboxRelay(db=db, producer=bad_producer, settings=settings)
    # Tansu's metadata lists every topic, so the closed producer refuses at once; Apache
    # Kafka's lists only topics asked for, which a stopped client never fetches: the relay's
    # bound on queueing ends that wait.
    with pytest.raises((ProducerClosed, TimeoutError)):
        await relay.publish_pending()
    async with db.session() as s:
        row = (await s.scalars(select(OutboxMessage))).one()
        assert row.sent_at is None and row.attempts == 1 and row.last_error

    producer = make_producer(settings)
    await producer.start()
    try:
        relay = OutboxRelay(db=db, producer=producer, settings=settings)
        assert await relay.publish_pending() == 1
        assert await relay.publish_pending() == 0
    finally:
        await producer.stop()

    records = await records_on(settings, "registry.inmates")
    assert len(records) == 1
    headers = dict(records[0].headers)
    assert records[0].key == str(event.participant_id).encode()
    assert headers["ce_type"] == b"id.bekal.registry.inmate.released.v1"
    await db.dispose()


async def test_redelivered_event_has_no_second_effect(database_url, broker, make_settings):
    settings = make_settings("training", database_url, broker)
    db = await _prepare(database_url)
    runner, producer = await start_runner(settings, db, _subscriptions())
    event = inmate_released()
    same_id = str(uuid.uuid4())
    await publish(settings, [event, event, event], event_ids=[same_id] * 3)
    runner.start()
    try:
        await wait_until(lambda: _inbox_at_least(db, 1))
        await asyncio.sleep(1.0)  # give the two duplicates time to be (not) applied
    finally:
        await runner.stop()
        await runner.consumer.stop()
        await producer.stop()
    assert await count(db, Effect) == 1
    assert await count(db, InboxMessage) == 1
    await db.dispose()


async def _inbox_at_least(db: Database, n: int) -> bool:
    return await count(db, InboxMessage) >= n


async def test_failing_handler_dead_letters_the_record_and_the_partition_goes_on(
    database_url, broker, make_settings
):
    settings = make_settings("training", database_url, broker)
    settings = settings.model_copy(update={"kafka_topic_partitions": 1})
    db = await _prepare(database_url)
    poison = inmate_released()
    good = [inmate_released() for _ in range(3)]
    runner, producer = await start_runner(
        settings, db, _subscriptions(fail_for={str(poison.participant_id)})
    )
    await publish(settings, [good[0], poison, good[1], good[2]])
    runner.start()
    try:
        await wait_until(lambda: _inbox_at_least(db, 3))
        await wait_until(lambda: _count_is(db, DeadLetter, 1))
    finally:
        await runner.stop()
        await runner.consumer.stop()
        await producer.stop()
    assert await count(db, Effect) == 3
    async with db.session() as s:
        dl = (await s.scalars(select(DeadLetter))).one()
    assert dl.reason == "handler_failed" and "rule broken on purpose" in dl.error
    assert dl.attempts == settings.consumer_max_attempts

    records = await records_on(settings, "training.dlq")
    assert len(records) == 1
    headers = dict(records[0].headers)
    assert headers["dlq_reason"] == b"handler_failed"
    assert b"rule broken on purpose" in headers["dlq_error"]
    assert headers["dlq_original_topic"] == settings.topic("registry.inmates").encode()
    assert records[0].key == str(poison.participant_id).encode()
    await db.dispose()


async def _count_is(db: Database, model: type, n: int) -> bool:
    return await count(db, model) == n


async def test_unreadable_records_go_to_the_dead_letter_topic_with_the_reason(
    database_url, broker, make_settings
):
    settings = make_settings("training", database_url, broker)
    db = await _prepare(database_url)
    runner, producer = await start_runner(settings, db, _subscriptions())
    topic = settings.topic("registry.inmates")
    # CloudEvents headers that look right over a body that is not JSON, of no known type, or
    # not the event its type says.
    for n, event_type, value in (
        (1, "id.bekal.registry.inmate.released.v1", b"{not json"),
        (2, "id.bekal.registry.inmate.vanished.v9", b"{}"),
        (3, "id.bekal.registry.inmate.released.v1", b'{"participant_id": "nope"}'),
    ):
        await producer.send_and_wait(
            topic,
            key=f"k{n}".encode(),
            value=value,
            headers=[
                ("ce_id", str(n).encode()),
                ("ce_type", event_type.encode()),
                ("ce_source", b"/x"),
                ("ce_specversion", b"1.0"),
                ("content-type", b"application/json"),
            ],
        )
    await producer.send_and_wait(topic, key=b"k4", value=b"plain bytes", headers=[])
    good = inmate_released()
    await publish(settings, [good])
    runner.start()
    try:
        await wait_until(lambda: _count_is(db, DeadLetter, 4))
        await wait_until(lambda: _inbox_at_least(db, 1))
    finally:
        await runner.stop()
        await runner.consumer.stop()
        await producer.stop()
    async with db.session() as s:
        reasons = sorted((await s.scalars(select(DeadLetter.reason))).all())
    assert reasons == ["invalid_payload", "malformed", "not_a_cloudevent", "unknown_type"]
    assert await count(db, Effect) == 1
    await db.dispose()


async def test_consumer_stopped_mid_stream_and_restarted_loses_nothing_and_doubles_nothing(
    database_url, broker, make_settings
):
    settings = make_settings("training", database_url, broker)
    db = await _prepare(database_url)
    events = [inmate_released() for _ in range(300)]
    await ensure_topics(settings, ["registry.inmates", "training.dlq"])
    await publish(settings, events)

    runner, producer = await start_runner(settings, db, _subscriptions())
    runner.start()
    await wait_until(lambda: _inbox_at_least(db, 40))
    await runner.stop()  # mid-stream: commits what it finished, leaves the rest
    await runner.consumer.stop()
    await producer.stop()
    first_run = await count(db, Effect)
    assert 40 <= first_run

    runner, producer = await start_runner(settings, db, _subscriptions())
    runner.start()
    try:
        await wait_until(lambda: _inbox_at_least(db, 300), within=60)
        await asyncio.sleep(0.5)
    finally:
        await runner.stop()
        await runner.consumer.stop()
        await producer.stop()
    async with db.session() as s:
        ids = (await s.scalars(select(Effect.participant_id))).all()
    assert len(ids) == 300, f"expected 300 effects, got {len(ids)}"
    assert set(ids) == {str(e.participant_id) for e in events}
    await db.dispose()


async def test_topics_are_created_explicitly_with_the_set_partitions(
    broker, make_settings, tmp_path
):  # type: ignore[no-untyped-def]
    from aiokafka.admin import AIOKafkaAdminClient

    settings = make_settings(
        "registry",
        f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        broker,
        kafka_topic_partitions=4,
    )
    created = await ensure_topics(settings, ["registry.inmates", "registry.facilities"])
    assert sorted(created) == [
        settings.topic("registry.facilities"),
        settings.topic("registry.inmates"),
    ]
    assert await ensure_topics(settings, ["registry.inmates"]) == []  # already there: nothing to do
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([settings.topic("registry.inmates")])
    finally:
        await admin.close()
    assert len(described[0]["partitions"]) == 4


class Applied(Base):
    """One row per applied event, saying which kind of handler applied it."""

    __tablename__ = "applied"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[str] = mapped_column(String(36))
    via: Mapped[str] = mapped_column(String(10))


def _batching_subscriptions(calls: list[list[str]], fail_when: str | None = None) -> Subscriptions:
    subs = Subscriptions("training")

    @subs.on(InmateReleased, InmateTemporarilyAbsent)
    async def one(event: InmateReleased | InmateTemporarilyAbsent, ctx: HandlerContext) -> None:
        ctx.session.add(Applied(participant_id=str(event.participant_id), via="one"))

    @subs.on_batch(InmateReleased)
    async def many(items: Sequence[Delivered[InmateReleased]], ctx: BatchContext) -> None:
        ids = [str(item.event.participant_id) for item in items]
        calls.append(ids)
        ctx.session.add_all([Applied(participant_id=i, via="batch") for i in ids])
        if fail_when in ids:
            await ctx.session.flush()  # its rows are written, then must be rolled back
            raise ValueError("batch broken on purpose")

    return subs


async def _applied(db: Database) -> list[tuple[str, str]]:
    async with db.session() as s:
        rows = await s.scalars(select(Applied).order_by(Applied.id))
        return [(r.participant_id, r.via) for r in rows]


async def test_batch_handler_gets_consecutive_events_of_its_type_in_partition_order(
    database_url, broker, make_settings
):
    settings = make_settings("training", database_url, broker)
    settings = settings.model_copy(update={"kafka_topic_partitions": 1})
    db = await _prepare(database_url)
    calls: list[list[str]] = []
    runner, producer = await start_runner(settings, db, _batching_subscriptions(calls))
    events = (
        [inmate_released() for _ in range(4)]
        + [inmate_temporarily_absent()]
        + [inmate_released() for _ in range(3)]
    )
    ids = [str(e.participant_id) for e in events]
    await publish(settings, events)
    runner.start()
    try:
        await wait_until(lambda: _inbox_at_least(db, len(events)))
    finally:
        await runner.stop()
        await runner.consumer.stop()
        await producer.stop()

    applied = await _applied(db)
    print(f"\nbatch handler calls: {[len(c) for c in calls]}")
    # Every event applied once, in the partition's order, across batch and one-event handlers.
    assert [pid for pid, _ in applied] == ids
    assert dict(applied)[ids[4]] == "one"  # the absence has no batch handler
    assert all(via == "batch" for pid, via in applied if pid != ids[4])
    # A batch call never reaches across the absence, and together the calls are the releases.
    assert [pid for call in calls for pid in call] == ids[:4] + ids[5:]
    assert all(not (set(call) & {ids[4]}) for call in calls)
    assert all(set(call) <= set(ids[:4]) or set(call) <= set(ids[5:]) for call in calls)
    assert max(len(call) for call in calls) > 1
    await db.dispose()


async def test_failing_batch_is_rolled_back_and_each_event_applied_once_one_by_one(
    database_url, broker, make_settings
):
    settings = make_settings("training", database_url, broker)
    settings = settings.model_copy(update={"kafka_topic_partitions": 1})
    db = await _prepare(database_url)
    events = [inmate_released() for _ in range(5)]
    ids = [str(e.participant_id) for e in events]
    calls: list[list[str]] = []
    runner, producer = await start_runner(
        settings, db, _batching_subscriptions(calls, fail_when=ids[2])
    )
    await publish(settings, events)
    runner.start()
    try:
        await wait_until(lambda: _inbox_at_least(db, len(events)))
    finally:
        await runner.stop()
        await runner.consumer.stop()
        await producer.stop()

    applied = await _applied(db)
    assert [pid for pid, _ in applied] == ids  # once each, in order: the batch's rows are gone
    assert ids[2] in {pid for call in calls for pid in call}  # the batch did run, and failed
    # The fetch that held the failing event went one by one, through the one-event handler.
    assert dict(applied)[ids[2]] == "one"
    assert await count(db, DeadLetter) == 0
    await db.dispose()


async def test_two_deliveries_of_the_same_batch_at_once_apply_it_once_and_run_no_handler_twice(
    database_url, broker, make_settings
):
    """Two members of a group handed the same records at once (a rebalance mid-batch).

    The inbox rows are claimed first, in one statement: the second delivery waits for the
    first transaction, finds every event taken and applies nothing, without running a
    handler or falling back one by one.
    """
    settings = make_settings("training", database_url, broker)
    db = await _prepare(database_url)
    events = [inmate_released() for _ in range(30)]
    ids = [str(e.participant_id) for e in events]
    calls: tuple[list[list[str]], list[list[str]]] = ([], [])
    subs = [_batching_subscriptions(c) for c in calls]

    @subs[0].on_batch(InmateReleased)
    async def slow(items: Sequence[Delivered[InmateReleased]], ctx: BatchContext) -> None:
        calls[0].append([str(item.event.participant_id) for item in items])
        ctx.session.add_all(
            [Applied(participant_id=str(i.event.participant_id), via="batch") for i in items]
        )
        await ctx.session.flush()
        await asyncio.sleep(0.5)  # holds its transaction while the other delivery arrives

    first, first_producer = await start_runner(settings, db, subs[0])
    second, second_producer = await start_runner(settings, db, subs[1])
    await publish(settings, events)
    records = await records_on(settings, "registry.inmates")
    try:

        async def later() -> object:
            await asyncio.sleep(0.1)
            return await second.process_batch(records)

        await asyncio.gather(first.process_batch(records), later())
    finally:
        for runner, producer in ((first, first_producer), (second, second_producer)):
            await runner.consumer.stop()
            await producer.stop()

    applied = await _applied(db)
    handled = [pid for c in calls for call in c for pid in call]
    print(
        f"\nsame {len(records)} records delivered twice at once: applied {len(applied)}, "
        f"handled by the first {first.processed}, by the second {second.processed}"
    )
    assert sorted(pid for pid, _ in applied) == sorted(ids)  # each once
    assert all(via == "batch" for _, via in applied)  # neither went one by one
    assert sorted(handled) == sorted(ids)  # no handler saw an event twice
    assert (first.processed, second.processed) == (len(ids), 0)
    assert await count(db, InboxMessage) == len(ids)
    await db.dispose()
