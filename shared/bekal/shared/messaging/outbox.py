"""Transactional outbox: events are rows written with the change; a relay publishes them."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from sqlalchemy import Row, func, select, text, update
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

    A failed publish leaves the row (and every row after it) unsent; the relay backs off and
    tries again, so an event is never lost. A crash between publish and mark-sent re-publishes
    the row: consumers drop it by its event id. Order per aggregate holds while the broker
    accepts a batch whole; if it refuses one row of a batch but takes a later one of the same
    key, that later one arrives first and the refused one follows on the retry, so consumers
    must not assume a strict order (they keep the newer state, see tests/reliability).
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
        self.published = 0
        # The service's ring of person keys, to seal rows written before it had read them.
        self.person_keys: Any = None
        self._sealed_late: dict[int, str] = {}  # seq -> the payload as sent, to store back

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
        """Publish one batch of unsent rows; return how many were sent.

        Every row of the batch is handed to the producer first and the acknowledgements are
        awaited together, so the producer packs them into a few requests instead of one round
        trip per row. Rows are marked sent up to the first one that failed: that row and every
        row after it stay unsent and go again (consumers drop the ones that did arrive by their
        event id).
        """
        async with self.db.session() as session:
            if not await _take_relay_lock(session, self.db):
                return 0
            await plan_each_statement(session)  # marking sent looks up the batch's seqs
            # The table, not the ORM: rows are read and marked with plain statements.
            rows = (
                await session.execute(
                    select(*_COLUMNS)
                    .where(_OUTBOX.c.sent_at.is_(None))
                    .order_by(_OUTBOX.c.seq)
                    .limit(self.settings.outbox_batch_size)
                )
            ).all()
            if not rows:
                return 0
            if self.db.is_sqlite:
                # On SQLite every transaction holds the database's one write lock (BEGIN
                # IMMEDIATE): end it before waiting on the broker, or a broker that does not
                # answer stalls every request that writes. The rows stay loaded; marking them
                # sent below is a second, short transaction. (PostgreSQL keeps the one
                # transaction: it holds no lock that writers wait for, only the relay's own.)
                await session.commit()
            timeout = self.settings.outbox_publish_timeout_seconds
            acks: list[asyncio.Future[Any]] = []
            failure: BaseException | None = None
            # Queueing is bounded too, by one deadline for the batch (a timeout scope, not a
            # task per row): it waits for the topic's metadata, and a producer whose client
            # has stopped never gets it (forever, on Apache Kafka, whose metadata lists only
            # topics asked for). A send cancelled while still queueing is not sent.
            deadline = asyncio.get_running_loop().time() + timeout
            # Keys in a row go together; the first row after them waits until they are all
            # acknowledged: a key is on the brokers before anything that follows it is sent.
            barrier: list[asyncio.Future[Any]] = []
            for row in rows:
                try:
                    async with asyncio.timeout_at(deadline):
                        if barrier and row.topic not in BARRIER_TOPICS:
                            await asyncio.wait(barrier)
                            if any(a.cancelled() or a.exception() for a in barrier):
                                break
                            barrier = []
                        acks.append(await self._send(row))
                        if row.topic in BARRIER_TOPICS:
                            barrier.append(acks[-1])
                except Exception as exc:  # not even queued (unknown type, buffer timeout)
                    failure = exc
                    break
            if acks:
                # Bounded: a broker that never answers must not stall the relay forever.
                await asyncio.wait(acks, timeout=timeout)
            sent: list[int] = []
            try:
                for row, ack in zip(rows, [*acks, None], strict=False):
                    result = _outcome(ack) if ack is not None else failure
                    if isinstance(result, BaseException):
                        await session.execute(
                            update(_OUTBOX)
                            .where(_OUTBOX.c.seq == row.seq)
                            .values(
                                attempts=_OUTBOX.c.attempts + 1,
                                last_error=f"{type(result).__name__}: {result}"[:2000],
                            )
                        )
                        failure = result
                        break
                    sent.append(row.seq)
                if sent:
                    # One statement for the batch instead of one per row. By seq, not by range:
                    # a row with a lower seq committed late may sit between them, unsent.
                    await session.execute(
                        update(_OUTBOX)
                        .where(among(session, _OUTBOX.c.seq, sent))
                        .values(sent_at=datetime.now(UTC), attempts=_OUTBOX.c.attempts + 1)
                    )
                    # A row sealed on its way out keeps only its sealed form.
                    for seq in sent:
                        if seq in self._sealed_late:
                            await session.execute(
                                update(_OUTBOX)
                                .where(_OUTBOX.c.seq == seq)
                                .values(payload=self._sealed_late.pop(seq))
                            )
            finally:
                await session.commit()
            self.published += len(sent)
            for row in rows[: len(sent)]:
                metrics.EVENTS_PUBLISHED.labels(self.settings.service_name, row.topic).inc()
            if failure is not None:
                raise failure
            return len(sent)

    def _seal_late(self, row: Row[Any], cls: type[Event]) -> str:
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

    async def _send(self, row: Row[Any]) -> asyncio.Future[Any]:
        """Queue one row in the producer; the future resolves when the broker has it.

        The payload goes as it was stored: the event's model validated it when the row was
        written (``add_event``), in the same transaction as the change it reports.
        """
        from bekal.shared.events import catalogue

        cls = catalogue.get(row.event_type)
        if cls is None:
            raise RuntimeError(f"outbox row {row.event_id} has unknown type {row.event_type}")
        payload = row.payload
        if UNSEALED in payload:
            payload = self._seal_late(row, cls)
        key, value, headers = encode(
            event_type=row.event_type,
            subject=row.aggregate_id,
            data=payload.encode(),
            source=self.source,
            event_id=str(row.event_id),
            time=row.created_at,
            traceparent=row.traceparent,
        )
        # A tombstone (a destroyed person key) has no value: compaction then drops the key.
        # send() waits only while the producer's buffer is full, bounded by its own
        # request timeout.
        return await self.producer.send(
            self.settings.topic(row.topic),
            key=key,
            value=None if getattr(cls, "tombstone", False) else value,
            headers=headers,
        )


_OUTBOX = table_of(OutboxMessage)
_COLUMNS = [
    _OUTBOX.c[name]
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


def _outcome(ack: asyncio.Future[Any]) -> object:
    """What an acknowledgement came to: its result, its error, or a timeout if still open."""
    if not ack.done():
        ack.cancel()
        return TimeoutError("no acknowledgement from the broker within 30 s")
    if ack.cancelled():
        return asyncio.CancelledError("the send was cancelled")
    return ack.exception() or ack.result()


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
