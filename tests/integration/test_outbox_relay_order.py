"""The outbox relay keeps each aggregate's events in order when the broker refuses part of what
it was given, and marks a row sent only once the broker has acknowledged it.

A real producer on the real broker, but for one chosen record: that one never reaches the
broker, and its send fails a while later (a refusal) or is never answered (a timeout), by which
time the records handed after it would have been acknowledged. Those of other people may be; a
later event of the same person must not reach the topic before it.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from sqlalchemy import select

from bekal.shared.db import Database
from bekal.shared.events.base import Event
from bekal.shared.events.topics import REGISTRY_INMATES
from bekal.shared.messaging.kafka import ensure_topics
from bekal.shared.messaging.models import OutboxMessage
from bekal.shared.messaging.outbox import OutboxRelay, add_event
from bekal.shared.migrations import create_platform_tables
from tests.support.factories import inmate_returned, inmate_temporarily_absent
from tests.support.kafka import records_on

pytestmark = pytest.mark.integration

REFUSED_AFTER = 0.5  # seconds: long enough for everything handed after it to be acknowledged


class _RefusingProducer(AIOKafkaProducer):  # type: ignore[misc]
    """A real producer that refuses one record (by event id), once: it is not sent, and its
    send fails ``REFUSED_AFTER`` seconds later, or never answers. Notes every event id the
    broker acknowledged."""

    def __init__(self, *, answer: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answer = answer
        self.refuse: str | None = None
        self.acknowledged: set[str] = set()

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        event_id = dict(kwargs["headers"])["ce_id"].decode()
        if event_id == self.refuse:
            self.refuse = None
            refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            if self.answer:

                def fail() -> None:
                    if not refused.done():  # the relay may have stopped waiting for it
                        refused.set_exception(MessageSizeTooLargeError())

                asyncio.get_running_loop().call_later(REFUSED_AFTER, fail)
            return refused
        ack = await super().send(topic, *args, **kwargs)

        def note(done: asyncio.Future[Any]) -> None:
            if not done.cancelled() and done.exception() is None:
                self.acknowledged.add(event_id)

        ack.add_done_callback(note)
        return ack


def _history(people: int, each: int) -> list[Event]:
    """``each`` events per person, the people's events interleaved (as requests write them)."""
    ids = [uuid.uuid4() for _ in range(people)]
    events: list[Event] = []
    for n in range(each):
        for pid in ids:
            made = inmate_temporarily_absent if n % 2 == 0 else inmate_returned
            events.append(made(participant_id=pid))
    return events


async def _outbox(db: Database) -> list[OutboxMessage]:
    async with db.session() as s:
        return list(await s.scalars(select(OutboxMessage).order_by(OutboxMessage.seq)))


@pytest.mark.parametrize("answer", [True, False], ids=["refused", "unanswered"])
@pytest.mark.parametrize("batch", [None, 4], ids=["default-batch", "batches"])
async def test_a_refused_event_is_never_overtaken_by_a_later_one_of_its_aggregate(
    database_url: str, broker: Any, make_settings: Any, answer: bool, batch: int | None
) -> None:
    settings = make_settings(
        "registry",
        database_url,
        broker,
        outbox_batch_size=batch,
        outbox_publish_timeout_seconds=2,
    )
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(create_platform_tables)
    await ensure_topics(settings, [REGISTRY_INMATES])
    events = _history(people=5, each=6)
    async with db.session() as s:
        for event in events:
            add_event(s, event)
        await s.commit()
    rows = await _outbox(db)
    # The first person's second event is refused; four more of theirs follow it.
    refused = rows[5]
    assert refused.aggregate_id == rows[0].aggregate_id
    later = [r for r in rows if r.aggregate_id == refused.aggregate_id and r.seq > refused.seq]
    producer = _RefusingProducer(
        answer=answer,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=5,
    )
    producer.refuse = str(refused.event_id)
    await producer.start()
    try:
        relay = OutboxRelay(db=db, producer=producer, settings=settings)
        with pytest.raises((MessageSizeTooLargeError, TimeoutError)):
            while await relay.publish_pending():
                pass
        after_refusal = {r.seq: r for r in await _outbox(db)}
        assert after_refusal[refused.seq].sent_at is None
        assert after_refusal[refused.seq].attempts == 1
        assert after_refusal[refused.seq].last_error
        # Nothing of that person after it reached the broker, nor was marked sent.
        assert not {str(r.event_id) for r in later} & producer.acknowledged
        assert all(after_refusal[r.seq].sent_at is None for r in later)
        # Only what the broker acknowledged is marked sent.
        marked = {str(r.event_id) for r in after_refusal.values() if r.sent_at is not None}
        assert marked <= producer.acknowledged

        # The relay tries again from the first row not acknowledged, and everything goes.
        while await relay.publish_pending():
            pass
        final = await _outbox(db)
        assert all(r.sent_at is not None for r in final)
        assert {str(r.event_id) for r in final} <= producer.acknowledged
    finally:
        await producer.stop()
        await db.dispose()

    # Each person's events, first deliveries in offset order, are in the order written.
    firsts: dict[str, list[str]] = {}
    seen: set[str] = set()
    records = await records_on(settings, REGISTRY_INMATES)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event_id = dict(record.headers)["ce_id"].decode()
        if event_id not in seen:
            seen.add(event_id)
            firsts.setdefault((record.key or b"").decode(), []).append(event_id)
    written: dict[str, list[str]] = {}
    for r in final:
        written.setdefault(r.aggregate_id, []).append(str(r.event_id))
    assert firsts == written
