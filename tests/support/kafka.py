"""The real broker in tests: publish events as a service's relay would, read a topic whole."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from bekal.shared.events import catalogue
from bekal.shared.events.base import Event
from bekal.shared.events.envelope import from_kafka, to_kafka
from bekal.shared.events.topics import SOURCES
from bekal.shared.messaging.kafka import make_producer, partitions_of
from bekal.shared.settings import Settings


async def publish(
    settings: Settings,
    events: Sequence[Event],
    *,
    event_ids: Sequence[str] | None = None,
    times: Sequence[datetime | None] | None = None,
) -> list[str]:
    """Publish ``events`` as their owning service's relay would (CloudEvents binary mode).

    Each gets the id at its place in ``event_ids`` (a new one otherwise); the ids are returned.
    """
    ids = list(event_ids) if event_ids else [str(uuid.uuid4()) for _ in events]
    producer = make_producer(settings)
    await producer.start()
    try:
        for i, event in enumerate(events):
            key, value, headers = to_kafka(
                event,
                source=SOURCES[event.topic.split(".", 1)[0]],
                event_id=ids[i],
                time=times[i] if times else None,
            )
            await producer.send_and_wait(
                settings.topic(event.topic), key=key, value=value, headers=headers
            )
    finally:
        await producer.stop()
    return ids


async def records_on(
    settings: Settings, topic: str, *, within: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on ``topic`` now: each partition from its beginning to its end offset."""
    name = settings.topic(topic)
    # No consumer group: nothing to join, nothing committed.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, [name])
        assert partitions, f"topic {name} does not exist"
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            assert loop.time() < deadline, f"topic {name} not read to its end in time"
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


@dataclass
class Published:
    """One record as it is on the topic, and the event it carries."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    event: Event

    @classmethod
    def of(cls, record: ConsumerRecord[bytes, bytes]) -> Published:
        headers = list(record.headers)
        event, _ = from_kafka(record.key, record.value, headers, catalogue)
        return cls(record.key or b"", record.value or b"", headers, event)

    def raw(self) -> bytes:
        """Everything that went over the wire, to search for what must never be there."""
        return self.key + self.value + b"".join(k.encode() + v for k, v in self.headers)
