"""The outbox relay never sends an event ahead of the key that seals it: a key the brokers have
not acknowledged holds back every row after it, so a consumer that misses a key can take the
person as erased. On Apache Kafka the key topic first takes no record as large as a key: the key
is queued, then refused by the broker, while the event's topic would take the event.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from sqlalchemy import select

from bekal.shared.db import Database
from bekal.shared.events import catalogue
from bekal.shared.events.catalogue import ParticipantCompleted, PersonKeyPublished
from bekal.shared.events.envelope import from_kafka
from bekal.shared.events.personal import PersonKey, key_to_text, opened
from bekal.shared.events.topics import REGISTRY_INMATES, REGISTRY_PERSON_KEYS, TRAINING_ENROLLMENTS
from bekal.shared.messaging.kafka import ensure_topics, make_producer
from bekal.shared.messaging.models import OutboxMessage
from bekal.shared.messaging.outbox import SESSION_INFO_KEY, UNSEALED, OutboxRelay, add_event
from bekal.shared.messaging.person_keys import PersonKeyRing
from bekal.shared.migrations import upgrade
from tests.integration.test_person_keys import _records
from tests.support.factories import inmate_shared, participant_completed
from tests.support.kafka import person_key_published

pytestmark = pytest.mark.integration


@pytest.mark.apache_kafka
async def test_an_unacknowledged_key_holds_back_the_event_it_seals(
    kafka_node: Any, make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings(
        "registry",
        f"sqlite+aiosqlite:///{tmp_path}/registry.db",
        kafka_node,
        pseudonym_secret="s-ord",
        outbox_publish_timeout_seconds=3,
    )
    await asyncio.to_thread(upgrade, "bekal.registry", settings.database_url)
    await ensure_topics(settings, [REGISTRY_INMATES])
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    keys_topic = settings.topic(REGISTRY_PERSON_KEYS)
    try:
        await admin.create_topics(
            [NewTopic(keys_topic, 1, 1, topic_configs={"max.message.bytes": "64"})]
        )
    finally:
        await admin.close()
    share = inmate_shared()
    key = PersonKey.new(str(share.participant_id))
    db = Database(settings.database_url)
    producer = make_producer(settings)
    await producer.start()
    try:
        async with db.session() as s:
            add_event(
                s,
                PersonKeyPublished(
                    participant_id=share.participant_id, key=key_to_text(key.secret)
                ),
            )
            add_event(s, share, person_key=key)
            await s.commit()
        relay = OutboxRelay(db=db, producer=producer, settings=settings)
        with pytest.raises(Exception):  # noqa: B017 - whatever the client raises for it
            await relay.publish_pending()
        assert await _records(settings, REGISTRY_INMATES) == []
        async with db.session() as s:
            unsent = list(
                await s.scalars(select(OutboxMessage.topic).where(OutboxMessage.sent_at.is_(None)))
            )
        assert sorted(unsent) == [REGISTRY_INMATES, REGISTRY_PERSON_KEYS]

        # Once the key can be written, both go, the key first.
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            default = {"max.message.bytes": "1048588"}
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, keys_topic, configs=default)]
            )
        finally:
            await admin.close()
        while await relay.publish_pending():
            pass
        keys = await _records(settings, REGISTRY_PERSON_KEYS)
        shares = await _records(settings, REGISTRY_INMATES)
        assert [k for k, _, _ in keys] == [str(share.participant_id).encode()]
        assert [k for k, _, _ in shares] == [str(share.participant_id).encode()]
    finally:
        await producer.stop()
        await db.dispose()


async def test_a_completion_written_before_the_keys_are_read_is_sealed_on_its_way_out(
    broker: Any, make_settings: Any, tmp_path: Path
) -> None:
    """Training completes a session while its ring has not read the key topic (the broker away
    since it started): the completion waits in its outbox, and the relay seals it with the
    person's key once the ring has the keys; the outbox then keeps only the sealed form."""
    settings = make_settings("training", f"sqlite+aiosqlite:///{tmp_path}/training.db", broker)
    await asyncio.to_thread(upgrade, "bekal.training", settings.database_url)
    await ensure_topics(settings, [TRAINING_ENROLLMENTS, REGISTRY_PERSON_KEYS])
    completion = participant_completed(participant_name="Nama Tertunda")
    ring = PersonKeyRing(settings)
    db = Database(settings.database_url)
    db.session_info[SESSION_INFO_KEY] = ring
    producer = make_producer(settings)
    await producer.start()
    try:
        async with db.session() as s:
            add_event(s, completion)
            await s.commit()
        relay = OutboxRelay(db=db, producer=producer, settings=settings)
        relay.person_keys = ring
        with pytest.raises(RuntimeError, match="not loaded"):
            await relay.publish_pending()  # the ring has not read the keys: nothing goes
        key = await person_key_published(settings, completion.participant_id)
        await ring.start()
        assert await relay.publish_pending() == 1
        [(k, v, h)] = await _records(settings, TRAINING_ENROLLMENTS)
        assert b"Nama Tertunda" not in (v or b"")
        event, meta = from_kafka(k, v, h, catalogue)
        assert isinstance(event, ParticipantCompleted) and event.personal is not None
        assert opened(event, key, meta.id).participant_name == "Nama Tertunda"
        async with db.session() as s:
            [payload] = list(await s.scalars(select(OutboxMessage.payload)))
        assert "Nama Tertunda" not in payload and UNSEALED not in payload
    finally:
        await ring.stop()
        await producer.stop()
        await db.dispose()


class _RecordingProducer(AIOKafkaProducer):  # type: ignore[misc]
    """A real producer that notes, for each record it is handed, which keys were acknowledged
    at that moment."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key_acks: list[asyncio.Future[Any]] = []
        self.sent: list[tuple[str, int]] = []  # (topic, keys acknowledged when it was sent)

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        self.sent.append((topic, sum(1 for ack in self.key_acks if ack.done())))
        ack = await super().send(topic, *args, **kwargs)
        if topic.endswith(REGISTRY_PERSON_KEYS):  # the physical name, with its namespace
            self.key_acks.append(ack)
        return ack


async def test_keys_staged_together_go_together_and_every_event_after_all_of_them(
    broker: Any, make_settings: Any, tmp_path: Path
) -> None:
    """An import stages a chunk's keys, then the events they seal. The relay hands the keys to
    the producer one after another, without a round trip each, and sends no event before every
    key staged ahead of it is acknowledged."""
    settings = make_settings(
        "registry", f"sqlite+aiosqlite:///{tmp_path}/registry.db", broker, pseudonym_secret="s-b"
    )
    await asyncio.to_thread(upgrade, "bekal.registry", settings.database_url)
    await ensure_topics(settings, [REGISTRY_INMATES, REGISTRY_PERSON_KEYS])
    shares = [inmate_shared() for _ in range(40)]
    keys = {s.participant_id: PersonKey.new(str(s.participant_id)) for s in shares}
    db = Database(settings.database_url)
    producer = _RecordingProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=5,
    )
    await producer.start()
    try:
        async with db.session() as s:
            for share in shares:
                key = keys[share.participant_id]
                published = PersonKeyPublished(
                    participant_id=share.participant_id, key=key_to_text(key.secret)
                )
                add_event(s, published)
            for share in shares:
                add_event(s, share, person_key=keys[share.participant_id])
            await s.commit()
        relay = OutboxRelay(db=db, producer=producer, settings=settings)
        while await relay.publish_pending():
            pass
        topics = [topic for topic, _ in producer.sent]
        keys_topic, inmates_topic = (
            settings.topic(t) for t in (REGISTRY_PERSON_KEYS, REGISTRY_INMATES)
        )
        assert topics == [keys_topic] * 40 + [inmates_topic] * 40
        # Every event went once all 40 keys were on the brokers.
        assert all(acked == 40 for topic, acked in producer.sent[40:])
        # The keys themselves did not wait for one another.
        assert producer.sent[39][1] < 39
        assert len(await _records(settings, REGISTRY_INMATES)) == 40
    finally:
        await producer.stop()
        await db.dispose()
