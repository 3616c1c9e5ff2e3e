"""Crypto-shredding end to end: an erasure destroys the person's key, so no copy of the event
history can be read for their name any more.

The registry and training run on one broker. A person is shared (their key goes to
registry.person-keys before their first event), training opens their name, then the registry
erases them: the key's tombstone follows, training forgets the key, and a new reader replaying
the history from the beginning meets the erased person's events without an error and without
a name. On Apache Kafka, with the compaction bound shortened for the test, no record on any topic
holds the name, the birth date, the birth year or the key itself any more.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from sqlalchemy import select

from bekal.registry.app import create_app as create_registry
from bekal.registry.models import PersonKey as PersonKeyRow
from bekal.shared.events import catalogue
from bekal.shared.events.catalogue import InmateShared, PersonKeyPublished
from bekal.shared.events.envelope import UnreadableEvent, from_kafka, to_kafka
from bekal.shared.events.personal import PersonalStatus, PersonKey, key_to_text, sealed
from bekal.shared.events.topics import REGISTRY_INMATES, REGISTRY_PERSON_KEYS, SOURCES
from bekal.shared.messaging.kafka import ensure_topics, partitions_of
from bekal.shared.messaging.models import OutboxMessage
from bekal.shared.messaging.person_keys import PersonKeyRing, open_personal
from bekal.shared.settings import Settings
from tests.support.apps import bearer, running
from tests.support.factories import inmate_shared
from tests.support.kafka import person_key_published, publish_person_keys, seal_as_published
from tests.support.training import running_training
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

NAME = "Sulastri Kriptowati"
BIRTH_DATE = "1987-03-14"
BIRTH_YEAR = re.compile(rb'birth_year"\s*:\s*1987')


async def test_erasure_destroys_the_key_and_a_replay_meets_an_erased_person(
    database_url: str, broker: Any, make_settings: Any, tmp_path: Path
) -> None:
    namespace = f"t{uuid.uuid4().hex[:8]}."
    reg_settings = make_settings(
        "registry", database_url, broker, kafka_namespace=namespace, pseudonym_secret="s-pk"
    )
    trn_settings = make_settings(
        "training", f"sqlite+aiosqlite:///{tmp_path}/training.db", broker, kafka_namespace=namespace
    )
    corrections = bearer(reg_settings, ministry="corrections", roles=["registry_admin"])
    reg_app = create_registry(reg_settings)
    async with (
        running(reg_app) as reg,
        running_training(trn_settings) as trn,
    ):
        industry = trn.token("training_admin", "training_officer")
        facility = await _post(reg, "/api/v1/facilities", _facility(), corrections)
        person = await _post(reg, "/api/v1/inmates", _inmate(facility["id"], NAME), corrections)
        other = await _post(
            reg, "/api/v1/inmates", _inmate(facility["id"], "Peserta Lain", "2"), corrections
        )

        async def named_in_training() -> bool:
            r = await trn.client.get(
                "/api/v1/participants", params={"facility_id": facility["id"]}, headers=industry
            )
            names = {p["full_name"] for p in r.json()["data"]} if r.status_code == 200 else set()
            return {NAME, "Peserta Lain"} <= names

        # Training opened the sealed name with the key it read from the key topic.
        await wait_until(named_in_training, within=60, what="training has the names")
        ring: PersonKeyRing = trn.app.state.messaging.person_keys
        key = ring.get(person["id"])
        assert key is not None and ring.get(other["id"]) is not None
        # The name never travels in the clear.
        inmates = await _raw(reg_settings, REGISTRY_INMATES)
        assert inmates and not any(NAME.encode() in blob for blob in inmates)
        assert not any(BIRTH_YEAR.search(blob) or BIRTH_DATE.encode() in blob for blob in inmates)

        secret_text = key_to_text(key.secret)

        async def registry_outbox() -> list[str]:
            async with reg_app.state.db.session() as s:
                return list((await s.scalars(select(OutboxMessage.payload))).all())

        assert any(secret_text in p for p in await registry_outbox())
        r = await reg.post(f"/api/v1/inmates/{person['id']}/erasure", headers=corrections)
        assert r.status_code == 200, r.text
        # The registry keeps no copy of the key: neither its row nor the record it sent.
        async with reg_app.state.db.session() as s:
            assert await s.get(PersonKeyRow, uuid.UUID(person["id"])) is None
        assert not any(secret_text in p for p in await registry_outbox())

        # The tombstone is on the key topic, and training has forgotten the key.
        async def tombstoned() -> bool:
            records = await _records(reg_settings, REGISTRY_PERSON_KEYS)
            return any(k == person["id"].encode() and v is None for k, v, _ in records)

        await wait_until(tombstoned, within=30, what="the key's tombstone")
        await wait_until(
            lambda: _is_none(ring.get(person["id"])), within=30, what="training forgot the key"
        )
        assert ring.get(other["id"]) is not None

        # A new reader replaying registry.inmates from the beginning: the erased person's
        # events come through without a name and without an error; the other person's open.
        fresh = PersonKeyRing(trn_settings)
        await fresh.start()
        try:
            seen: dict[str, PersonalStatus] = {}
            for k, v, headers in await _records(reg_settings, REGISTRY_INMATES):
                event, meta = from_kafka(k, v, headers, catalogue)
                event, meta = await open_personal(event, meta, fresh)
                if isinstance(event, InmateShared):
                    seen[str(event.participant_id)] = event.personal_status
                    if event.personal_status is PersonalStatus.ERASED:
                        assert event.full_name is None and event.birth_year is None
                    else:
                        assert event.full_name == "Peserta Lain" and event.birth_year == 1987
            assert seen == {person["id"]: PersonalStatus.ERASED, other["id"]: PersonalStatus.OPEN}
        finally:
            await fresh.stop()

        if broker.name.startswith("apache-kafka"):
            await _compact_now(reg_settings)
            secret = key_to_text(key.secret).encode()

            async def nothing_left() -> bool:
                for blob in await _everything(reg_settings, namespace):
                    if NAME.encode() in blob or secret in blob or BIRTH_DATE.encode() in blob:
                        return False
                    if BIRTH_YEAR.search(blob):
                        return False
                return True

            await wait_until(
                nothing_left, within=120, what="compaction removed the erased person's key"
            )
            # The other person's key is still there: compaction keeps the latest per key.
            keys = await _records(reg_settings, REGISTRY_PERSON_KEYS)
            assert any(k == other["id"].encode() and v is not None for k, v, _ in keys)


async def _post(client: Any, url: str, body: Any, headers: Any) -> Any:
    r = await client.post(url, json=body, headers=headers)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def _is_none(value: object) -> bool:
    return value is None


def _facility() -> dict[str, Any]:
    return {
        "code": "LP-KRIP",
        "name": "Lapas Kelas IIA Kripto",
        "kind": "lapas",
        "facility_class": "IIA",
        "province": "Jawa Barat",
        "regional_office": "Kanwil Jawa Barat",
        "capacity": 800,
    }


def _inmate(facility_id: str, name: str, n: str = "1") -> dict[str, Any]:
    return {
        "registration_number": f"K.{n}",
        "full_name": name,
        "nik": f"320101010101000{n}",
        "sex": "F",
        "date_of_birth": BIRTH_DATE,
        "facility_id": facility_id,
        "admission_date": "2023-01-10",
        "expected_release_date": "2025-06-30",
        "consent": {"training": True, "data_sharing": True},
    }


async def _records(
    settings: Settings, topic: str
) -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]:
    """Every record of ``topic`` from its beginning, with a plain consumer of no group."""
    return await _read(settings, [settings.topic(topic)])


async def _raw(settings: Settings, topic: str) -> list[bytes]:
    return [_blob(k, v, h) for k, v, h in await _records(settings, topic)]


async def _everything(settings: Settings, namespace: str) -> list[bytes]:
    """Each record of every topic of the test's namespace, its key, value and headers as bytes."""
    reader = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None)
    await reader.start()
    try:
        names = [t for t in await reader.topics() if t.startswith(namespace)]
    finally:
        await reader.stop()
    assert names
    return [_blob(k, v, h) for k, v, h in await _read(settings, names)]


async def _read(
    settings: Settings, names: list[str]
) -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]:
    reader = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await reader.start()
    try:
        partitions = await partitions_of(reader, names)
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        ends = await reader.end_offsets(partitions)
        out: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
        deadline = asyncio.get_running_loop().time() + 30
        while [tp for tp in partitions if await reader.position(tp) < ends[tp]]:
            assert asyncio.get_running_loop().time() < deadline, "topics not read in time"
            for batch in (await reader.getmany(timeout_ms=300)).values():
                out.extend((r.key, r.value, list(r.headers or [])) for r in batch)
        return out
    finally:
        await reader.stop()


def _blob(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> bytes:
    return b"\0".join([key or b"", value or b"", *(h for _, h in headers)])


async def _compact_now(settings: Settings) -> None:
    """The compaction bound shortened for the test: the cleaner takes a tombstone at once and
    drops it right after; a new record rolls the segment that holds it (the active segment is
    never cleaned)."""
    topic = settings.topic(REGISTRY_PERSON_KEYS)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    topic,
                    configs={
                        "cleanup.policy": "compact",
                        "max.compaction.lag.ms": "100",
                        "min.cleanable.dirty.ratio": "0.01",
                        "segment.ms": "100",
                        "delete.retention.ms": "0",
                        "min.compaction.lag.ms": "0",
                    },
                )
            ]
        )
    finally:
        await admin.close()
    await asyncio.sleep(0.5)
    # A record on every partition after segment.ms rolls each partition's segment.
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for partition in range(settings.kafka_topic_partitions):
            filler = PersonKeyPublished(participant_id=uuid.uuid4(), key="A" * 43)
            k, v, h = to_kafka(filler, source=SOURCES["registry"])
            await producer.send_and_wait(topic, key=k, value=v, headers=h, partition=partition)
    finally:
        await producer.stop()


async def test_a_key_written_just_before_its_event_is_found_without_waiting(
    broker: Any, make_settings: Any, tmp_path: Path
) -> None:
    """The race: a consumer meets a sealed event whose key its ring has not read yet. Reading
    the key topic to its end at that moment finds it (the registry's relay has the key
    acknowledged before it sends the event); a key that is not there then is a destroyed one."""
    settings = make_settings(
        "training",
        f"sqlite+aiosqlite:///{tmp_path}/training.db",
        broker,
        kafka_namespace=f"t{uuid.uuid4().hex[:8]}.",
    )
    await ensure_topics(settings, [REGISTRY_PERSON_KEYS, REGISTRY_INMATES])
    ring = PersonKeyRing(settings)
    await ring.catch_up()  # read to the (empty) end; no background refresh in this test
    try:
        share = inmate_shared(full_name=NAME, birth_year=1987)
        event_id = str(uuid.uuid4())
        # The key on its topic, then at once the event it seals, as the relay sends them.
        await person_key_published(settings, share.participant_id)
        wire = seal_as_published(share, event_id)
        k, v, h = to_kafka(wire, source=SOURCES["registry"], event_id=event_id)
        assert share.participant_id and str(share.participant_id) not in ring
        event, _ = await open_personal(*from_kafka(k, v, h, catalogue), ring)
        assert isinstance(event, InmateShared)
        assert (event.full_name, event.birth_year, event.personal_status) == (
            NAME,
            1987,
            PersonalStatus.OPEN,
        )

        # A person whose key is not on the topic (destroyed and compacted away): erased, at once.
        gone = inmate_shared(full_name="Tidak Ada Kunci")
        lost_key = PersonKey.new(str(gone.participant_id))
        wire = sealed(gone, lost_key, event_id)
        k, v, h = to_kafka(wire, source=SOURCES["registry"], event_id=event_id)
        event, _ = await open_personal(*from_kafka(k, v, h, catalogue), ring)
        assert isinstance(event, InmateShared) and event.personal_erased
        assert event.full_name is None

        # A sealed block changed on the way does not open: the record is unreadable (dead letter).
        assert wire.personal is not None
        forged = wire.model_copy(
            update={"personal": wire.personal.model_copy(update={"kid": str(share.participant_id)})}
        )
        forged = forged.model_copy(update={"participant_id": share.participant_id})
        k, v, h = to_kafka(forged, source=SOURCES["registry"], event_id=event_id)
        with pytest.raises(UnreadableEvent, match="sealed_fields_broken"):
            await open_personal(*from_kafka(k, v, h, catalogue), ring)
    finally:
        await ring.stop()


async def test_keys_published_in_one_batch_are_all_found_by_the_events_they_seal(
    broker: Any, make_settings: Any, tmp_path: Path
) -> None:
    """The registry's relay sends many new people's keys in one batch, then their events. The
    ring must find the last key of the batch too. Tansu 0.6 reports a partition's end as the
    last batch's first offset + 1, and a fetch hands over at most a consumer batch (200
    records): a ring that stopped at the reported end left the rest of the batch unread, took
    those people for erased, and training ignored their shares."""
    settings = make_settings(
        "training",
        f"sqlite+aiosqlite:///{tmp_path}/training.db",
        broker,
        kafka_namespace=f"t{uuid.uuid4().hex[:8]}.",
    )
    await ensure_topics(settings, [REGISTRY_PERSON_KEYS])
    ring = PersonKeyRing(settings)
    await ring.catch_up()  # read to the (empty) end; no background refresh in this test
    keys = [PersonKey.new(str(uuid.uuid4())) for _ in range(3 * settings.consumer_batch)]
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        linger_ms=50,
        max_batch_size=1024 * 1024,
    )
    await producer.start()
    try:
        await publish_person_keys(settings, producer, keys)
        found = [await ring.key_for(key.kid) for key in reversed(keys)]
        assert [k.secret if k else None for k in found] == [k.secret for k in reversed(keys)]
        # A person whose key is not there is erased; a key that arrives later is held again.
        missing = str(uuid.uuid4())
        assert await ring.key_for(missing) is None
        await publish_person_keys(settings, producer, [PersonKey.new(missing)])
        await ring.catch_up(drain=True)
        assert missing in ring
    finally:
        await producer.stop()
        await ring.stop()
