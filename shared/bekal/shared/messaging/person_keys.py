"""The person keys a service that needs names holds: read from registry.person-keys, in memory.

The ring reads the compacted key topic from its beginning when the service starts and keeps
reading it; a key's tombstone (the person erased, or their consent withdrawn) drops the key at
once. Keys are never
written to the service's database or logs, so the service has no copy to delete later: the
broker's compaction is the only place a destroyed key lingers, within its documented bound.

Ordering: the registry's outbox relay has the key acknowledged by the brokers before it sends
any event the key seals. So when a consumer meets a sealed event whose key it does not hold,
reading the key topic up to its end *now* either finds the key or proves it destroyed: a key
that is still missing after that was erased (its tombstone read, or compacted away already).

Generations: the topic is keyed by the kid, and a person may have had several keys, each
destroyed in turn: a consent withdrawal destroys the live one, a later consent brings a key of
the next generation (``personal.key_id``). An event is opened with the key its sealed block
names, which must be one of the event's own person's (``personal.sealing_kid``): what was sealed
under a destroyed generation reads as erased, what was sealed since under the new one opens.
A service sealing an event (training's completions) takes the person's current key
(``current``): the held one of the highest generation, none between a withdrawal and a new
consent (the event then goes without the name). The kids of one person land on different
partitions, so the ring never relies on the order it reads them in, only on the generations.
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from bekal.shared.events.base import Event
from bekal.shared.events.envelope import EventMeta, UnreadableEvent
from bekal.shared.events.personal import (
    Personal,
    PersonKey,
    SealBroken,
    key_from_text,
    key_id,
    key_owner,
    opened,
    sealing_kid,
    withheld,
)
from bekal.shared.events.topics import REGISTRY_PERSON_KEYS
from bekal.shared.messaging.kafka import make_reader, partitions_of
from bekal.shared.messaging.outbox import SESSION_INFO_KEY
from bekal.shared.settings import Settings

log = structlog.get_logger(__name__)

__all__ = ["SESSION_INFO_KEY", "PersonKeyRing", "open_personal"]

REFRESH_SECONDS = 2.0  # how soon a running service applies a tombstone it did not ask for
CATCH_UP_SECONDS = 60.0
DRAIN_WAIT_MS = 100  # a fetch that brings nothing for this long ends a drain


class PersonKeyRing:
    """The live keys of every shared person, by kid (``personal.key_id``)."""

    def __init__(
        self, settings: Settings, *, make_consumer: Callable[[], AIOKafkaConsumer] | None = None
    ) -> None:
        self.settings = settings
        self.topic = settings.topic(REGISTRY_PERSON_KEYS)
        self._make = make_consumer or (lambda: make_reader(settings))
        self._reader: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        # Held as plain values, not one object per person: a dict of strings and bytes, and
        # one of tuples of numbers, are left out of the cyclic collector's walks. A
        # PersonKey and a set per person made every full collection of a service holding
        # 90,000 people's keys walk 220,000 objects, 120 to 250 ms with the event loop stopped,
        # about every 1.5 s under load: the p99 of every request (docs/performance.md).
        self._keys: dict[str, bytes] = {}  # kid -> secret
        self._generations: dict[str, tuple[int, ...]] = {}  # person -> the generations held
        self._erased: set[str] = set()  # kids with no key after a drain: destroyed
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.destroyed = 0  # tombstones applied (for tests and the logs)
        self.loaded = False  # the whole topic read once: a key missing now is a destroyed one

    def get(self, kid: str) -> PersonKey | None:
        """The key ``kid`` names if held now (no broker round trip). To seal an event being
        written, take the person's ``current`` key instead.

        Refused until the topic has been read once: before that a missing key proves nothing,
        and an event sealed without it would lose the person's name.
        """
        if not self.loaded:
            raise RuntimeError("the person keys are not loaded yet: try again shortly")
        return self._held(kid)

    def current(self, person: str) -> PersonKey | None:
        """The person's key to seal a new event with: the held one of the highest generation;
        None if the person has none (erased, or consent withdrawn and not given again).

        Refused until the topic has been read once, as ``get`` is.
        """
        if not self.loaded:
            raise RuntimeError("the person keys are not loaded yet: try again shortly")
        generations = self._generations.get(person)
        if not generations:
            return None
        return self._held(key_id(person, max(generations)))

    def _held(self, kid: str) -> PersonKey | None:
        secret = self._keys.get(kid)
        return None if secret is None else PersonKey(kid=kid, secret=secret)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    async def start(self) -> None:
        """Read the whole topic once, then keep reading it in the background."""
        await self.catch_up()
        self._task = asyncio.create_task(self._refresh(), name="person-key-ring")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        async with self._lock:
            if self._reader is not None:
                await self._reader.stop()
                self._reader = None
        self._keys.clear()
        self._generations.clear()
        self._erased.clear()
        self.loaded = False

    async def key_for(self, kid: str) -> PersonKey | None:
        """The person's key; None only once the topic, read to its end now, does not hold it.

        A person found without a key is remembered as erased, so a history with many of their
        events costs one read of the topic, not one per event.
        """
        key = self._held(kid)
        if key is None and kid not in self._erased:
            await self.catch_up(drain=True)
            key = self._held(kid)
            if key is None:
                self._erased.add(kid)
        return key

    async def catch_up(self, *, drain: bool = False) -> None:
        """Apply every record up to the topic's end as it is at the call.

        ``drain``: then go on reading until a fetch brings nothing. A broker's end offset is not
        always the end: Tansu 0.6 reports the last batch's first offset + 1, so the rest of that
        batch (keys published together) lies beyond it, and a fetch hands over at most
        ``consumer_batch`` records. Used before declaring a key destroyed.

        Bounded: a broker that stops answering raises (the consumer then retries the event
        later) instead of holding the consumer for ever.
        """
        async with self._lock, asyncio.timeout(CATCH_UP_SECONDS):
            reader = await self._ready()
            ends = await reader.end_offsets(self._partitions)
            while [tp for tp, end in ends.items() if end > 0 and await reader.position(tp) < end]:
                self._apply_all(await reader.getmany(*self._partitions, timeout_ms=200))
            while drain:
                batches = await reader.getmany(*self._partitions, timeout_ms=DRAIN_WAIT_MS)
                self._apply_all(batches)
                drain = any(batches.values())
            self.loaded = True

    def _apply_all(self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        for records in batches.values():
            for record in records:
                self._apply(record.key, record.value)

    async def _ready(self) -> AIOKafkaConsumer:
        if self._reader is not None:
            return self._reader
        reader = self._make()
        await reader.start()
        try:
            partitions: list[TopicPartition] = []
            for _ in range(100):  # the registry may not have created the topic yet
                partitions = await partitions_of(reader, [self.topic])
                if partitions:
                    break
                await asyncio.sleep(0.2)
            if not partitions:
                raise RuntimeError(f"topic {self.topic} has no partitions")
            reader.assign(partitions)
            await reader.seek_to_beginning(*partitions)
        except BaseException:
            await reader.stop()
            raise
        self._reader, self._partitions = reader, partitions
        return reader

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        kid = key.decode()
        try:
            person, generation = key_owner(kid)
        except ValueError:
            log.error("person_key_unreadable", kid=kid, error="the record's key is not a kid")
            return
        if value is None:  # the tombstone: the person erased, or their consent withdrawn
            self._erased.add(kid)
            held = tuple(g for g in self._generations.get(person, ()) if g != generation)
            if held:
                self._generations[person] = held
            else:
                self._generations.pop(person, None)
            if self._keys.pop(kid, None) is not None:
                self.destroyed += 1
                log.info("person_key_destroyed", kid=kid)
            return
        try:
            data = json.loads(value)
            # Records written before generations carry no kid: the participant id is theirs.
            named = str(data.get("kid") or uuid.UUID(data["participant_id"]))
            if named != kid or str(uuid.UUID(data["participant_id"])) != person:
                raise ValueError("the record names another key than its record key")
            # Made to check the secret's length and the kid; only the secret is kept.
            self._keys[kid] = PersonKey(kid=kid, secret=key_from_text(data["key"])).secret
        except (ValueError, KeyError, TypeError) as exc:
            log.error("person_key_unreadable", kid=kid, error=f"{type(exc).__name__}")
            return
        self._erased.discard(kid)
        held = self._generations.get(person, ())
        if generation not in held:
            self._generations[person] = (*held, generation)

    async def _refresh(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.catch_up()
            except (KafkaError, OSError, RuntimeError) as exc:
                log.warning("person_keys_refresh_failed", error=str(exc)[:300])
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=REFRESH_SECONDS)


async def open_personal(
    event: Event, meta: EventMeta, ring: PersonKeyRing | None
) -> tuple[Event, EventMeta]:
    """The event as a handler gets it: upcast to its current version, personal fields opened.

    A service without a ring (it needs no names) gets them withheld (None); a person whose key
    (of the generation that sealed the event) is destroyed gets them marked erased (None). A
    sealed block that names no key of the event's own person, or does not open under the key it
    names, is unreadable: it goes to the dead letters.

    ``event`` is the one just read from its record (``from_kafka``), which nothing else holds:
    it is opened in place, not copied, and what is returned is that event (or, upcast, a new
    one).
    """
    upcast = _upcast(type(event))
    if upcast is not None:
        # An older version carried the fields in the clear: they are the event's as they are.
        event = upcast(event)
        meta = replace(meta, type=event.event_type())
        if isinstance(event, Personal) and ring is None:
            event = withheld(event.model_copy(update=dict.fromkeys(event.personal_fields)))
        return event, meta
    if not isinstance(event, Personal):
        return event, meta
    if ring is None:
        return withheld(event, in_place=True), meta
    try:
        kid = sealing_kid(event)
        key = await ring.key_for(kid) if kid is not None else None
        return opened(event, key, meta.id, checked=True, in_place=True), meta
    except SealBroken as exc:
        raise UnreadableEvent("sealed_fields_broken", str(exc)) from exc


@functools.cache
def _upcast(cls: type[Event]) -> Callable[[Event], Event] | None:
    """The event class's ``upcast``, if it has one. Looked up once a class: a missing
    attribute costs pydantic's model class an exception (4 % of a consumer's samples)."""
    return getattr(cls, "upcast", None)
