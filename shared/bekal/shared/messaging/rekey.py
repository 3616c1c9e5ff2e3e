"""Re-key a topic's history in place: the migration of events published before crypto-shredding.

Version 1 of InmateShared and ParticipantCompleted carried the name (and birth year) in the
clear, and the topics keep their history for ever. This copies every record of a topic, in
order, to the end of its own partition, each version 1 event turned into version 2 (the same
event id, time, source and trace; its personal fields sealed with the person's key, or left
out when the person is erased), every other record byte for byte; then it deletes each
partition's records before the copy (Kafka's DeleteRecords), so the clear names are gone.

Consumers may run meanwhile: a copy has its original's event id, so every consumer group's
inbox drops it as a duplicate, and a consumer behind the deleted offsets restarts from the
copies (auto.offset.reset=earliest). The topic's producer must be stopped, or its new events
would land between the copies (docs/runbook.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.errors import KafkaError

from bekal.shared.db import Database
from bekal.shared.events.base import Event, EventRegistry
from bekal.shared.events.catalogue import catalogue
from bekal.shared.events.envelope import UnreadableEvent, encode, from_kafka
from bekal.shared.events.personal import Personal, PersonKey, sealed
from bekal.shared.messaging.kafka import _common, make_producer, make_reader, partitions_of
from bekal.shared.messaging.outbox import backlog
from bekal.shared.messaging.person_keys import PersonKeyRing
from bekal.shared.settings import Settings

log = structlog.get_logger(__name__)

# The key of a person (None: erased, or never shared), by participant id.
KeyOf = Callable[[uuid.UUID], Awaitable[PersonKey | None]]


@dataclass
class Rekeyed:
    copied: int = 0
    sealed: int = 0  # version 1 events now version 2, sealed
    dropped_fields: int = 0  # version 1 events of an erased person: now without the fields
    deleted_before: dict[int, int] | None = None  # partition -> the first offset kept


async def rekey_topic(
    *,
    settings: Settings,
    topic: str,
    registry: EventRegistry,
    key_of: KeyOf,
    producer: AIOKafkaProducer,
) -> Rekeyed:
    """Copy ``topic``'s history with version 1 events sealed, then delete the original."""
    name = settings.topic(topic)
    reader = make_reader(settings)
    await reader.start()
    result = Rekeyed()
    try:
        partitions = await partitions_of(reader, [name])
        if not partitions:
            raise RuntimeError(f"topic {name} does not exist")
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        ends = await reader.end_offsets(partitions)
        while [tp for tp in partitions if await reader.position(tp) < ends[tp]]:
            batches = await reader.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue  # a copy this run wrote: the original is already done
                    value, headers = await _rekeyed(
                        record.key,
                        record.value,
                        list(record.headers or []),
                        registry,
                        key_of,
                        result,
                    )
                    await producer.send_and_wait(
                        name, key=record.key, value=value, headers=headers, partition=tp.partition
                    )
                    result.copied += 1
    finally:
        await reader.stop()
    admin = AIOKafkaAdminClient(**_common(settings), request_timeout_ms=30000)
    await admin.start()
    try:
        await admin.delete_records(
            {tp: RecordsToDelete(before_offset=end) for tp, end in ends.items() if end > 0},
            timeout_ms=30000,
        )
    except KafkaError as exc:  # Tansu (development only) closes the connection on it
        raise RuntimeError(
            f"the copies of {name} are written, but the broker refused to delete the originals "
            f"(DeleteRecords): {exc}"
        ) from exc
    finally:
        await admin.close()
    result.deleted_before = {tp.partition: end for tp, end in ends.items()}
    log.info(
        "topic_rekeyed",
        topic=name,
        copied=result.copied,
        sealed=result.sealed,
        dropped_fields=result.dropped_fields,
    )
    return result


async def _rekeyed(
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]],
    registry: EventRegistry,
    key_of: KeyOf,
    result: Rekeyed,
) -> tuple[bytes | None, list[tuple[str, bytes]]]:
    """The record as it is copied: a version 1 personal event sealed, anything else as it is."""
    try:
        event, meta = from_kafka(key, value, headers, registry)
    except UnreadableEvent:
        return value, headers
    upcast = getattr(event, "upcast", None)
    if upcast is None:
        return value, headers
    current: Event = upcast()
    if not isinstance(current, Personal):
        return value, headers
    person = await key_of(uuid.UUID(current.person_id()))
    if person is None:
        result.dropped_fields += 1
    else:
        result.sealed += 1
    current = sealed(current, person, meta.id)
    source = dict(headers).get("ce_source", b"").decode()
    _, new_value, new_headers = encode(
        event_type=current.event_type(),
        subject=current.aggregate_id,
        data=current.model_dump_json().encode(),
        source=source,
        event_id=meta.id,
        time=meta.time,
        traceparent=meta.traceparent,
    )
    return new_value, new_headers


async def rekey_with_ring(*, settings: Settings, topic: str, db: Database) -> Rekeyed:
    """Re-key ``topic`` of a service that reads the person keys (training: its completions).

    Its outbox must be empty and its relay stopped: new events would land among the copies.
    """
    if await backlog(db):
        raise RuntimeError("the outbox still has events to send: let it drain, then stop it")
    ring = PersonKeyRing(settings)
    await ring.start()
    producer = make_producer(settings)
    await producer.start()
    try:

        async def key_of(participant_id: uuid.UUID) -> PersonKey | None:
            return await ring.key_for(str(participant_id))

        return await rekey_topic(
            settings=settings, topic=topic, registry=catalogue, key_of=key_of, producer=producer
        )
    finally:
        await producer.stop()
        await ring.stop()
