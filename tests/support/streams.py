"""Streams of catalogue events written fast onto a topic, as the owning service's relay would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import InmateShared, Sex
from bekal.shared.events.envelope import to_kafka
from bekal.shared.events.topics import SOURCES
from bekal.shared.messaging.kafka import partitions_of
from bekal.shared.settings import Settings
from tests.support.factories import inmate_shared
from tests.support.kafka import as_registry_seals, publish_new_person_keys

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def shared_inmate(i: int, *, facility_id: uuid.UUID, participant_id: uuid.UUID) -> InmateShared:
    """The ``i``-th consenting inmate of a stream: its name says which one it is."""
    return inmate_shared(
        participant_id=participant_id,
        full_name=f"Peserta Uji {i:06d}",
        sex=Sex.MALE if i % 2 else Sex.FEMALE,
        birth_year=1970 + i % 40,
        facility_id=facility_id,
        admission_date=date(2023, 1, 1) + timedelta(days=i % 365),
        expected_release_date=date(2027, 1, 1),
    )


@dataclass
class Sent:
    event: Event
    event_id: str
    time: datetime


class StreamProducer:
    """One producer for a whole test: ``send`` many records without waiting for each."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=settings.kafka_enable_idempotence,
            linger_ms=20,
            max_batch_size=256 * 1024,
            request_timeout_ms=30000,
        )
        self.sent = 0

    async def __aenter__(self) -> StreamProducer:
        await self.producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.producer.stop()

    async def send(
        self,
        events: Sequence[Event],
        *,
        event_ids: Sequence[str] | None = None,
        times: Sequence[datetime] | None = None,
    ) -> list[Sent]:
        """Publish ``events`` in order (per key) and wait until the broker has them all."""
        out: list[Sent] = []
        futures = []
        await publish_new_person_keys(self.settings, self.producer, events)
        for i, event in enumerate(events):
            event_id = event_ids[i] if event_ids else str(uuid.uuid4())
            at = times[i] if times else T0 + timedelta(milliseconds=self.sent + i)
            wire = await as_registry_seals(self.settings, self.producer, event, event_id)
            key, value, headers = to_kafka(
                wire, source=SOURCES[event.topic.split(".", 1)[0]], event_id=event_id, time=at
            )
            futures.append(await self.send_raw(event.topic, key, value, headers))
            out.append(Sent(event, event_id, at))
        await asyncio.gather(*futures)
        self.sent += len(events)
        return out

    async def send_raw(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[object]:
        """Queue one record exactly as given (for poison); returns the future of its delivery."""
        return await self.producer.send(
            self.settings.topic(topic), key=key, value=value, headers=headers
        )


async def committed_total(settings: Settings, group: str, topic: str) -> int:
    """The sum over ``topic``'s partitions of the offsets ``group`` has committed."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.topic(group),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        name = settings.topic(topic)
        total = 0
        for tp in await partitions_of(consumer, [name]):
            offset = await consumer.committed(tp)
            total += offset or 0
        return total
    finally:
        await consumer.stop()
