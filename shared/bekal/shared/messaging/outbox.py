"""Transactional outbox: events are rows written with the change; a relay publishes them."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import structlog
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared import metrics
from bekal.shared.db import Database, utcnow
from bekal.shared.events.base import Event
from bekal.shared.events.envelope import to_kafka
from bekal.shared.logging import current_traceparent
from bekal.shared.messaging.models import OutboxMessage
from bekal.shared.settings import Settings

log = structlog.get_logger(__name__)

# Every outbox relay of every service uses the same lock id; each service has its own database.
_RELAY_LOCK_ID = 0x6265_6B61_6C00


def add_event(session: AsyncSession, event: Event) -> OutboxMessage:
    """Stage an event in the caller's transaction. It is published only if that transaction commits.

    The payload is validated by the event's model before it gets here (constructing the model
    validates), so nothing unreadable reaches the outbox.
    """
    row = OutboxMessage(
        event_id=uuid.uuid4(),
        topic=event.topic,
        aggregate_id=event.aggregate_id,
        event_type=event.event_type(),
        payload=json.dumps(event.data(), ensure_ascii=False),
        traceparent=current_traceparent(),
        created_at=utcnow(),
        attempts=0,
    )
    session.add(row)
    session.info["outbox_dirty"] = True
    return row


class OutboxRelay:
    """Publishes unsent outbox rows in order, with acks=all, and marks them sent.

    A failed publish leaves the row (and every row after it) unsent; the relay backs off and
    tries again, so an event is never lost and order per aggregate is kept. A crash between
    publish and mark-sent re-publishes the row: consumers drop it by its event id.
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
        """Publish one batch of unsent rows; return how many were sent."""
        async with self.db.session() as session:
            if not await _take_relay_lock(session, self.db):
                return 0
            rows = (
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.sent_at.is_(None))
                    .order_by(OutboxMessage.seq)
                    .limit(self.settings.outbox_batch_size)
                )
            ).all()
            if self.db.is_sqlite and rows:
                # On SQLite every transaction holds the database's one write lock (BEGIN
                # IMMEDIATE): end it before waiting on the broker, or a broker that does not
                # answer stalls every request that writes. The rows stay loaded; marking them
                # sent below is a second, short transaction. (PostgreSQL keeps the one
                # transaction: it holds no lock that writers wait for, only the relay's own.)
                await session.commit()
            sent = 0
            try:
                for row in rows:
                    try:
                        await self._publish(row)
                    except Exception as exc:
                        row.attempts += 1
                        row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                        raise
                    row.sent_at = datetime.now(UTC)
                    row.attempts += 1
                    sent += 1
                    metrics.EVENTS_PUBLISHED.labels(self.settings.service_name, row.topic).inc()
            finally:
                await session.commit()
            return sent

    async def _publish(self, row: OutboxMessage) -> None:
        from bekal.shared.events import catalogue

        cls = catalogue.get(row.event_type)
        if cls is None:
            raise RuntimeError(f"outbox row {row.event_id} has unknown type {row.event_type}")
        event = cls.model_validate_json(row.payload)
        key, value, headers = to_kafka(
            event,
            source=self.source,
            event_id=str(row.event_id),
            time=row.created_at,
            traceparent=row.traceparent,
        )
        # Bounded: a broker that never answers must not stall the relay forever.
        await asyncio.wait_for(
            self.producer.send_and_wait(
                self.settings.topic(row.topic), key=key, value=value, headers=headers
            ),
            timeout=30,
        )


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
