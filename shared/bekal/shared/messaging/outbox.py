"""Transactional outbox: events are rows written with the change; a relay publishes them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, NamedTuple

import structlog
from aiokafka import AIOKafkaProducer
from sqlalchemy import Select, String, func, select, text, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared import metrics
from bekal.shared.db import (
    Database,
    among,
    copy_rows,
    plan_each_statement,
    table_of,
    utcnow,
)
from bekal.shared.events.base import Event
from bekal.shared.events.envelope import encode
from bekal.shared.events.personal import Personal, PersonKey, plain_fields, sealed
from bekal.shared.events.topics import REGISTRY_PERSON_KEYS
from bekal.shared.logging import current_traceparent
from bekal.shared.messaging.models import OutboxMessage
from bekal.shared.settings import Settings

# Where a service's sessions find its ring of person keys (bekal.shared.messaging.person_keys).
SESSION_INFO_KEY = "person_keys"
# A stored payload's personal fields still to be sealed by the relay (never sent as such).
UNSEALED = "_unsealed"
# Rows of these topics are acknowledged before any later row is sent: a person's key is on the
# brokers before an event it seals, so a consumer that misses a key can tell an erased person.
BARRIER_TOPICS = frozenset({REGISTRY_PERSON_KEYS})

log = structlog.get_logger(__name__)

# Every outbox relay of every service uses the same lock id; each service has its own database.
_RELAY_LOCK_ID = 0x6265_6B61_6C00


def add_event(
    session: AsyncSession, event: Event, *, person_key: PersonKey | None = None
) -> OutboxMessage:
    """Stage an event in the caller's transaction. It is published only if that transaction commits.

    The payload is validated by the event's model before it gets here (constructing the model
    validates), so nothing unreadable reaches the outbox.

    An event that names a person (``Personal``) is stored and published with its personal
    fields sealed under the person's key, bound to its event id: ``person_key`` (the registry,
    which holds the keys), else the person's current key in the service's ring (training). A
    service with a ring that holds no key of the person writes the event without the fields:
    the person is erased, or has withdrawn their consent and not given it again.
    A ring that has not read the key topic yet (the broker away since the service started)
    proves nothing: the fields wait in the service's own database, marked ``UNSEALED``, and the
    relay seals them just before it sends the row (its ring has read the topic by then).
    """
    unsealed: dict[str, Any] | None = None
    if isinstance(event, Personal) and person_key is None:
        ring = session.info.get(SESSION_INFO_KEY)
        if ring is None:
            raise RuntimeError(f"{type(event).__name__} names a person: give its person key")
        if not ring.loaded:
            unsealed = plain_fields(event)
        else:
            person_key = ring.current(event.person_id())
    row = OutboxMessage(**outbox_values(event, person_key=person_key, unsealed=unsealed))
    session.add(row)
    session.info["outbox_dirty"] = True
    return row


def outbox_values(
    event: Event,
    *,
    person_key: PersonKey | None = None,
    unsealed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The outbox row of ``event``, as ``add_event`` stages it, for a writer of many at once
    (``add_events``). A ``Personal`` event is sealed with ``person_key`` (without it, written
    without its fields), unless ``unsealed`` holds its fields for the relay to seal."""
    event_id = uuid.uuid4()
    data: dict[str, Any] | None = None
    if unsealed is not None:
        data = {**event.data(), UNSEALED: unsealed}
    elif isinstance(event, Personal):
        event = sealed(event, person_key, str(event_id))
    return {
        "event_id": event_id,
        "topic": event.topic,
        "aggregate_id": event.aggregate_id,
        "event_type": event.event_type(),
        "payload": json.dumps(event.data() if data is None else data, ensure_ascii=False),
        "traceparent": current_traceparent(),
        "created_at": utcnow(),
        "attempts": 0,
    }


async def add_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Write a bulk load's outbox rows (``outbox_values``) in the caller's transaction, in the
    order given, with ``COPY`` on PostgreSQL: for thousands of events, where staging each
    through the ORM costs more than making it."""
    await copy_rows(session, _OUTBOX, rows)
    session.info["outbox_dirty"] = True


class OutboxRelay:
    """Publishes unsent outbox rows in order, with acks=all, and marks them sent.

    A row is marked sent only once the broker has acknowledged it. One that fails stays unsent,
    with every row of its key after it; the relay backs off and tries again, so an event is
    never lost. A crash between publish and mark-sent re-publishes the row: consumers drop it by
    its event id.

    Order per key holds whatever the broker refuses or leaves unanswered: a row goes to the
    producer only once every earlier row of its key (topic and aggregate id) handed in the same
    run is acknowledged. A later event of an aggregate therefore never reaches its partition
    ahead of an earlier one the broker refused, or that timed out and goes again: neither the
    producer's retries nor a refusal of part of a request can reorder what was never handed
    together. Rows of different keys (nearly every row) go without waiting for one another.
    A run ends with every row it handed acknowledged or failed; a failed row that the producer
    still holds (unanswered) stays ahead, in its partition's queue, of the copy sent again.
    """

    def __init__(self, *, db: Database, producer: AIOKafkaProducer, settings: Settings) -> None:
        self.db = db
        self.producer = producer
        self.settings = settings
        self.source = _source(settings.service_name)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.backoff = settings.outbox_poll_interval_seconds
        self.batch_size = settings.outbox_batch
        self.published = 0
        # The service's ring of person keys, to seal rows written before it had read them.
        self.person_keys: Any = None
        self._sealed_late: dict[int, str] = {}  # seq -> the payload as sent, to store back
        self._types: dict[str, tuple[type[Event], bool]] = {}  # event type -> class, tombstone
        self._topics: dict[str, str] = {}  # a row's topic -> its name on the brokers

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(
            self._run(), name=f"outbox-relay-{self.settings.service_name}"
        )

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task:
            await self._task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                sent = await self.publish_pending()
                failures = 0
                if sent:
                    continue
            except Exception as exc:
                failures += 1
                log.warning("outbox_publish_failed", error=str(exc), consecutive_failures=failures)
            delay = self.settings.outbox_poll_interval_seconds * min(2**failures, 20)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def publish_pending(self) -> int:
        """Publish unsent rows, batch after batch, until none is left; return how many were sent.

        The batches are pipelined: while one is handed to the producer (which takes a batch per
        partition at a time, so handing waits on the broker), the one before it is awaited and
        marked sent and the next one read, in one short transaction (none is open while the
        broker is waited on: on SQLite no request waits on the broker for the write lock). On
        the first failure nothing more is handed: the rows in flight are waited for, those
        acknowledged are marked sent, the failed row is noted and its error raised. The next
        run starts again from the first row not acknowledged (rows that arrive twice, consumers
        drop by event id).

        A run reads on from the last row it read, so it ends after ``_RUN_BATCHES`` batches or
        at the first batch that is not full: a row committed late with a lower seq than rows
        already read (its transaction took longer) waits for the next run, which starts again
        from the first unsent row.
        """
        run = _Run()
        async with self._relay_lock() as locked:
            if not locked:
                return 0
            rows = await self._turn(None, run, read=True)
            flying: _Flight | None = None  # handed, acknowledgements awaited
            batches = 0
            while rows or flying is not None:
                handing = None
                more = False
                if rows:
                    batches += 1
                    run.last_seq = rows[-1].seq
                    more = len(rows) == self.batch_size and batches < _RUN_BATCHES
                    handing = asyncio.create_task(self._hand(rows, run))
                try:
                    rows = await self._turn(flying, run, read=more)
                except BaseException:
                    if handing is not None:
                        handing.cancel()  # a send cancelled while queueing is not sent
                        await asyncio.gather(handing, return_exceptions=True)
                    raise
                flying = await handing if handing is not None else None
        if run.failures:
            seq, error = min(run.failures, key=lambda failure: failure[0])
            async with self.db.session() as session:
                await session.execute(
                    update(_OUTBOX)
                    .where(_OUTBOX.c.seq == seq)
                    .values(
                        attempts=_OUTBOX.c.attempts + 1,
                        last_error=f"{type(error).__name__}: {error}"[:2000],
                    )
                )
                await session.commit()
            raise error
        return run.sent

    async def _turn(self, flying: _Flight | None, run: _Run, *, read: bool) -> Sequence[_Outboxed]:
        """Await the flight before the one being handed, mark what of it was acknowledged, and
        read the next batch (``read``, and nothing has failed), in one transaction."""
        if flying is not None:
            await self._land(flying, run)
        read = read and not run.stopped and not self._stopping.is_set()
        if flying is None and not read:
            return ()
        rows: Sequence[_Outboxed] = ()
        async with self.db.session() as session:
            # Marking sent looks up the batch's seqs; the next batch is the first rows of the
            # unsent rows' index, read through it even in an outbox with no statistics.
            await plan_each_statement(session, by_index=True)
            sent = await self._mark(session, flying) if flying is not None else []
            if read:
                rows = await self._read(session, after=run.last_seq)
            await session.commit()
        self._count(sent)
        run.sent += len(sent)
        return rows

    @asynccontextmanager
    async def _relay_lock(self) -> AsyncIterator[bool]:
        """On PostgreSQL one replica relays at a time: a transaction of its own holds the lock
        for the whole run, and its end (or its connection's loss) releases it. SQLite has one
        writer anyway."""
        if self.db.is_sqlite:
            yield True
            return
        async with self.db.session() as session:
            yield await _take_relay_lock(session, self.db)

    async def _read(self, session: AsyncSession, *, after: int | None) -> Sequence[_Outboxed]:
        result = await session.execute(pending(after=after, limit=self.batch_size))
        return list(map(_Outboxed._make, result))

    async def _hand(self, rows: Sequence[_Outboxed], run: _Run) -> _Flight:
        """Hand ``rows`` to the producer in order without awaiting their acknowledgements, but
        for two waits: a row waits for the earlier row of its key still in flight, and the
        first row after consecutive person keys waits for all of them (a key is on the brokers
        before anything that follows it is sent). Either one failed: nothing more is handed.

        Queueing is bounded too, by one deadline for the batch: it waits for the topic's
        metadata, and a producer whose client has stopped never gets it (forever, on Apache
        Kafka, whose metadata lists only topics asked for). A send cancelled while still
        queueing is not sent.
        """
        flight = _Flight(rows)
        row = rows[0]
        try:
            async with asyncio.timeout(self.settings.outbox_publish_timeout_seconds):
                for row in rows:
                    if run.stopped:  # a row of an earlier batch failed meanwhile
                        break
                    if run.barrier and row.topic not in BARRIER_TOPICS:
                        await asyncio.wait(run.barrier)
                        if not all(map(_acknowledged, run.barrier)):
                            run.stopped = True  # the key's own failure is noted as it lands
                            break
                        run.barrier = []
                    key = (row.topic, row.aggregate_id)
                    earlier = run.unacknowledged.get(key)
                    if earlier is not None:
                        if not earlier.done():
                            await asyncio.wait((earlier,))
                        if not _acknowledged(earlier):
                            run.stopped = True
                            break
                    ack = await self._send(row)
                    flight.acks.append(ack)
                    run.unacknowledged[key] = ack
                    if row.topic in BARRIER_TOPICS:
                        run.barrier.append(ack)
        except Exception as exc:  # not even queued (unknown type, buffer timeout, deadline)
            run.failures.append((row.seq, exc))
            run.stopped = True
        return flight

    async def _land(self, flight: _Flight, run: _Run) -> None:
        """Wait for a flight's acknowledgements, for as long as the publish timeout; a row
        without one by then (its send is cancelled) or refused is a failure of the run."""
        timeout = self.settings.outbox_publish_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                for ack in flight.acks:
                    if not ack.done():  # one producer batch resolves many rows at once
                        await asyncio.wait((ack,))
        except TimeoutError:
            pass
        for row, ack in zip(flight.rows, flight.acks, strict=False):
            if _acknowledged(ack):
                flight.acknowledged.append(row)
                key = (row.topic, row.aggregate_id)
                if run.unacknowledged.get(key) is ack:
                    del run.unacknowledged[key]
                continue
            if not ack.done():
                ack.cancel()
                error: BaseException = TimeoutError(
                    f"no acknowledgement from the broker within {timeout:g} s"
                )
            elif ack.cancelled():
                error = asyncio.CancelledError("the send was cancelled")
            else:
                error = ack.exception() or RuntimeError("no acknowledgement")
            run.failures.append((row.seq, error))
            run.stopped = True

    async def _mark(self, session: AsyncSession, flight: _Flight) -> list[_Outboxed]:
        """Mark a landed flight's acknowledged rows sent; return them."""
        sent = flight.acknowledged
        if not sent:
            return sent
        # One statement for the batch instead of one per row. By seq, not by range: a row
        # with a lower seq committed late may sit between them, unsent.
        await session.execute(
            update(_OUTBOX)
            .where(among(session, _OUTBOX.c.seq, [row.seq for row in sent]))
            .values(sent_at=datetime.now(UTC), attempts=_OUTBOX.c.attempts + 1)
        )
        # A row sealed on its way out keeps only its sealed form.
        for row in sent if self._sealed_late else ():
            if row.seq in self._sealed_late:
                await session.execute(
                    update(_OUTBOX)
                    .where(_OUTBOX.c.seq == row.seq)
                    .values(payload=self._sealed_late.pop(row.seq))
                )
        return sent

    def _count(self, sent: Sequence[_Outboxed]) -> None:
        self.published += len(sent)
        for topic, n in Counter(map(_topic_of, sent)).items():
            metrics.EVENTS_PUBLISHED.labels(self.settings.service_name, topic).inc(n)

    def _seal_late(self, row: _Outboxed, cls: type[Event]) -> str:
        """A row written before the ring had read the keys, sealed now with its event id."""
        data = json.loads(row.payload)
        fields = data.pop(UNSEALED, None)
        if fields is None:  # the marker was only text inside some value
            return str(row.payload)
        if self.person_keys is None:
            raise RuntimeError(f"outbox row {row.event_id} waits for person keys this relay lacks")
        event = cls.model_validate({**data, **fields})
        assert isinstance(event, Personal)
        key = self.person_keys.current(event.person_id())  # refused until loaded
        payload = json.dumps(sealed(event, key, str(row.event_id)).data(), ensure_ascii=False)
        self._sealed_late[row.seq] = payload
        return payload

    def _type(self, row: _Outboxed) -> tuple[type[Event], bool]:
        """A row's event class, and whether it is a tombstone."""
        known = self._types.get(row.event_type)
        if known is None:
            from bekal.shared.events import catalogue

            cls = catalogue.get(row.event_type)
            if cls is None:
                raise RuntimeError(f"outbox row {row.event_id} has unknown type {row.event_type}")
            known = self._types[row.event_type] = (cls, bool(getattr(cls, "tombstone", False)))
        return known

    def _send(self, row: _Outboxed) -> Coroutine[Any, Any, asyncio.Future[Any]]:
        """Queue one row in the producer: awaited, it gives a future that resolves when the
        broker has the row. The producer's own coroutine is returned, not awaited in one of
        this method's (a coroutine a row less).

        The payload goes as it was stored: the event's model validated it when the row was
        written (``add_event``), in the same transaction as the change it reports.
        """
        cls, tombstone = self._type(row)
        payload = row.payload
        if UNSEALED in payload:
            payload = self._seal_late(row, cls)
        key, value, headers = encode(
            event_type=row.event_type,
            subject=row.aggregate_id,
            data=payload.encode(),
            source=self.source,
            event_id=row.event_id,
            time=row.created_at,
            traceparent=row.traceparent,
        )
        topic = self._topics.get(row.topic)
        if topic is None:
            topic = self._topics[row.topic] = self.settings.topic(row.topic)
        # A tombstone (a destroyed person key) has no value: compaction then drops the key.
        # send() waits only while the producer's buffer is full, bounded by its own
        # request timeout.
        return self.producer.send(
            topic, key=key, value=None if tombstone else value, headers=headers
        )


class _Outboxed(NamedTuple):
    """An unsent row as the relay reads it (a tuple's fields, not a result row's: the relay
    reads each row's fields a dozen times, and a row's attribute lookup by name cost as much
    as encoding it)."""

    seq: int
    event_id: str
    topic: str
    aggregate_id: str
    event_type: str
    payload: str
    traceparent: str | None
    created_at: datetime


# Batches a run reads before it starts again from the first unsent row.
_RUN_BATCHES = 20


@dataclass
class _Flight:
    """A batch handed to the producer: its rows, and the acknowledgements of those handed (a
    prefix of them, when a failure stopped the handing)."""

    rows: Sequence[_Outboxed]
    acks: list[asyncio.Future[Any]] = field(default_factory=list)
    acknowledged: list[_Outboxed] = field(default_factory=list)  # once landed


@dataclass
class _Run:
    """What one run of the relay has learnt so far."""

    last_seq: int | None = None
    # Each key's last row handed and not yet acknowledged: the next row of the key waits for it.
    unacknowledged: dict[tuple[str, str], asyncio.Future[Any]] = field(default_factory=dict)
    barrier: list[asyncio.Future[Any]] = field(default_factory=list)  # person keys in a row
    failures: list[tuple[int, BaseException]] = field(default_factory=list)  # (seq, error)
    stopped: bool = False  # something failed: hand nothing more, read nothing more
    sent: int = 0


_OUTBOX = table_of(OutboxMessage)
# The event id as stored (its canonical text), not parsed into a UUID only to be written out.
_COLUMNS = [
    type_coerce(_OUTBOX.c.event_id, String).label("event_id")
    if name == "event_id"
    else _OUTBOX.c[name]
    for name in (
        "seq",
        "event_id",
        "topic",
        "aggregate_id",
        "event_type",
        "payload",
        "traceparent",
        "created_at",
    )
]


_topic_of = attrgetter("topic")


def _acknowledged(ack: asyncio.Future[Any]) -> bool:
    return ack.done() and not ack.cancelled() and ack.exception() is None


def pending(*, after: int | None, limit: int) -> Select[Any]:
    """The relay's read: the next ``limit`` unsent rows after ``after``, in ``seq`` order (the
    partial index ``ix_outbox_pending`` holds exactly these rows)."""
    query = select(*_COLUMNS).where(_OUTBOX.c.sent_at.is_(None))
    if after is not None:
        query = query.where(_OUTBOX.c.seq > after)
    return query.order_by(_OUTBOX.c.seq).limit(limit)


async def backlog(db: Database) -> int:
    async with db.session() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.sent_at.is_(None))
            )
            or 0
        )


async def _take_relay_lock(session: AsyncSession, db: Database) -> bool:
    """On PostgreSQL one replica relays at a time (keeps order); SQLite has one writer anyway."""
    if db.is_sqlite:
        return True
    got = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": _RELAY_LOCK_ID}
    )
    return bool(got)


def _source(service_name: str) -> str:
    from bekal.shared.events.topics import SOURCES

    return SOURCES.get(service_name, f"/bekal/{service_name}")
