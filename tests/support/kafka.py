"""The real broker in tests: publish events as a service's relay would, read a topic whole."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from bekal.shared.events import catalogue
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import PersonKeyPublished
from bekal.shared.events.envelope import from_kafka, to_kafka
from bekal.shared.events.personal import (
    Personal,
    PersonKey,
    key_from_text,
    key_to_text,
    opened,
    sealed,
)
from bekal.shared.events.topics import REGISTRY_PERSON_KEYS, SOURCES
from bekal.shared.messaging.kafka import ensure_topics, make_producer, partitions_of
from bekal.shared.settings import Settings

# The keys the registry would hold for the people tests publish events of, by participant id
# (each a 1st generation key, whose kid is the participant id).
PERSON_KEYS: dict[str, PersonKey] = {}
_KEY_TOPICS: set[tuple[str, str]] = set()  # (brokers, physical key topic) known to exist


async def as_registry_seals(
    settings: Settings, producer: AIOKafkaProducer, event: Event, event_id: str
) -> Event:
    """``event`` as the registry (or training) publishes it: a person's fields sealed with the
    person's key, which goes to registry.person-keys first the first time the person appears.

    An event built without the fields (an erased person's) is published without them.
    """
    if not isinstance(event, Personal) or event.personal is not None:
        return event
    if all(getattr(event, name) is None for name in event.personal_fields):
        return sealed(event, None, event_id)
    kid = event.person_id()
    key = PERSON_KEYS.get(kid)
    if key is None:
        key = PERSON_KEYS[kid] = PersonKey.new(kid)
        await publish_person_key(settings, producer, key)
    return sealed(event, key, event_id)


async def person_key_published(settings: Settings, participant_id: uuid.UUID) -> PersonKey:
    """The test key of ``participant_id``, on registry.person-keys (published if new)."""
    kid = str(participant_id)
    key = PERSON_KEYS.get(kid)
    if key is None:
        key = PERSON_KEYS[kid] = PersonKey.new(kid)
        producer = make_producer(settings)
        await producer.start()
        try:
            await publish_person_key(settings, producer, key)
        finally:
            await producer.stop()
    return key


def seal_as_published(event: Event, event_id: str) -> Event:
    """``event`` sealed with its person's test key, already published (person_key_published)."""
    if not isinstance(event, Personal) or event.personal is not None:
        return event
    return sealed(event, PERSON_KEYS[event.person_id()], event_id)


async def publish_person_key(
    settings: Settings, producer: AIOKafkaProducer, key: PersonKey
) -> None:
    await publish_person_keys(settings, producer, [key])


async def publish_person_keys(
    settings: Settings, producer: AIOKafkaProducer, keys: Sequence[PersonKey]
) -> None:
    """``keys`` on registry.person-keys, acknowledged by the broker before this returns (as the
    registry's relay has them before it sends an event they seal): one round trip for all."""
    if not keys:
        return
    where = (settings.kafka_bootstrap_servers, settings.topic(REGISTRY_PERSON_KEYS))
    if where not in _KEY_TOPICS:
        await ensure_topics(settings, [REGISTRY_PERSON_KEYS])
        _KEY_TOPICS.add(where)
    futures = []
    for key in keys:
        record = PersonKeyPublished(
            participant_id=uuid.UUID(key.person), kid=key.kid, key=key_to_text(key.secret)
        )
        k, value, headers = to_kafka(record, source=SOURCES["registry"])
        futures.append(
            await producer.send(
                settings.topic(REGISTRY_PERSON_KEYS), key=k, value=value, headers=headers
            )
        )
    await asyncio.gather(*futures)


async def publish_new_person_keys(
    settings: Settings, producer: AIOKafkaProducer, events: Sequence[Event]
) -> None:
    """The keys of the people in ``events`` not seen before, published together, so that a
    stream of many new people's events needs one key round trip, not one per person."""
    new: dict[str, PersonKey] = {}
    for event in events:
        if not isinstance(event, Personal) or event.personal is not None:
            continue
        if all(getattr(event, name) is None for name in event.personal_fields):
            continue
        kid = event.person_id()
        if kid not in PERSON_KEYS and kid not in new:
            new[kid] = PersonKey.new(kid)
    await publish_person_keys(settings, producer, list(new.values()))
    PERSON_KEYS.update(new)


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
            event = await as_registry_seals(settings, producer, event, ids[i])
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


async def person_keys_on(settings: Settings) -> dict[str, PersonKey]:
    """The person keys on registry.person-keys now (none if the topic is not there)."""
    keys: dict[str, PersonKey] = {}
    reader = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None)
    await reader.start()
    try:
        exists = settings.topic(REGISTRY_PERSON_KEYS) in await reader.topics()
    finally:
        await reader.stop()
    if not exists:
        return keys
    for record in await records_on(settings, REGISTRY_PERSON_KEYS):
        kid = (record.key or b"").decode()
        if record.value is None:
            keys.pop(kid, None)
        else:
            secret = key_from_text(json.loads(record.value)["key"])
            keys[kid] = PersonKey(kid=kid, secret=secret)
    return keys


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
    def of(
        cls, record: ConsumerRecord[bytes, bytes], keys: dict[str, PersonKey] | None = None
    ) -> Published:
        """``keys``: the person keys on the broker, to open a person's sealed fields with, as
        a consumer that reads names does (a destroyed key leaves them None)."""
        headers = list(record.headers)
        event, meta = from_kafka(record.key, record.value, headers, catalogue)
        if keys is not None and isinstance(event, Personal):
            kid = event.personal.kid if event.personal is not None else ""
            event = opened(event, keys.get(kid), meta.id)
        return cls(record.key or b"", record.value or b"", headers, event)

    def raw(self) -> bytes:
        """Everything that went over the wire, to search for what must never be there."""
        return self.key + self.value + b"".join(k.encode() + v for k, v in self.headers)
