"""Idempotent consumers: inbox + commit-after-transaction, bounded retries, dead-letter topic.

Different partitions are applied at once, each in its own transaction on its own connection:
order is promised only within a partition, and each partition's offset is committed after its
own transaction, so a slow or failing record holds back its partition and no other.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeAlias, TypeVar, overload

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import QueuePool

from bekal.shared import metrics
from bekal.shared.db import (
    Database,
    insert_rows,
    is_unavailable,
    plan_each_statement,
    table_of,
    utcnow,
)
from bekal.shared.events.base import Event, EventRegistry
from bekal.shared.events.envelope import EventMeta, UnreadableEvent, from_kafka
from bekal.shared.events.topics import dead_letter_topic
from bekal.shared.logging import current_traceparent, new_traceparent, set_traceparent
from bekal.shared.messaging.journal import Journal
from bekal.shared.messaging.kafka import committed_labels, rewind_to_committed
from bekal.shared.messaging.models import DeadLetter, InboxMessage
from bekal.shared.messaging.outbox import add_event
from bekal.shared.messaging.person_keys import PersonKeyRing, open_personal
from bekal.shared.settings import Settings

log = structlog.get_logger(__name__)


class Record(Protocol):
    """What the runner needs of a Kafka record (aiokafka's ConsumerRecord has it)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


@dataclass
class StoredRecord:
    """A record rebuilt from the dead-letter table, for a retry."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass
class HandlerContext:
    """What a handler gets besides the event: the transaction, the envelope, app resources."""

    session: AsyncSession
    meta: EventMeta
    # What the service's spec provides (e.g. a signing key), by name.
    resources: Mapping[str, Any] = field(default_factory=dict)

    def publish(self, event: Event) -> None:
        """Stage a follow-up event in the same transaction as the handler's effect."""
        add_event(self.session, event)


Handler = Callable[[Any, HandlerContext], Awaitable[None]]

E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Delivered(Generic[E]):
    """One event of a batch, with its envelope."""

    event: E
    meta: EventMeta


@dataclass
class BatchContext:
    """What a batch handler gets besides its events: the transaction and app resources."""

    session: AsyncSession
    resources: Mapping[str, Any] = field(default_factory=dict)

    def publish(self, event: Event, *, cause: EventMeta) -> None:
        """Stage a follow-up event of ``cause`` in the transaction, in ``cause``'s trace."""
        before = current_traceparent()
        set_traceparent(new_traceparent(cause.traceparent))
        try:
            add_event(self.session, event)
        finally:
            set_traceparent(before)


BatchHandler = Callable[[Sequence[Delivered[Any]], BatchContext], Awaitable[None]]


# The event types a handler is registered for, one TypeVar each, so that its first parameter
# is checked against exactly them (a handler of several types takes their union).
E1 = TypeVar("E1", bound=Event)
E2 = TypeVar("E2", bound=Event)
E3 = TypeVar("E3", bound=Event)
E4 = TypeVar("E4", bound=Event)
E5 = TypeVar("E5", bound=Event)
E6 = TypeVar("E6", bound=Event)
_H = TypeVar("_H")
# A one-event handler of E, a batch handler of E, and the decorator that registers either.
_One: TypeAlias = Callable[[E, HandlerContext], Awaitable[None]]
_Many: TypeAlias = Callable[[Sequence[Delivered[E]], BatchContext], Awaitable[None]]
_Registers: TypeAlias = Callable[[_H], _H]


class Subscriptions:
    """One consumer group's handlers: one function per consumed event type.

    A type may also have a batch handler (``on_batch``): it gets consecutive new events of that
    type from one fetched partition batch at once, so it can read and write them with a few
    statements instead of a few per event. It must leave exactly the state the one-event
    handler would leave applied to the same events in order: the one-event handler is still
    what runs when a batch falls back to one by one, on a retry and for a dead letter.
    """

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.handlers: dict[str, Handler] = {}
        self.batch_handlers: dict[str, BatchHandler] = {}
        self._topics: set[str] = set()

    # One overload per number of event types (up to six): a handler of several types takes
    # their union, and mypy checks that it does. Add one when a handler needs a seventh.
    @overload
    def on(self, a: type[E1], /) -> _Registers[_One[E1]]: ...
    @overload
    def on(self, a: type[E1], b: type[E2], /) -> _Registers[_One[E1 | E2]]: ...
    @overload
    def on(self, a: type[E1], b: type[E2], c: type[E3], /) -> _Registers[_One[E1 | E2 | E3]]: ...
    @overload
    def on(
        self, a: type[E1], b: type[E2], c: type[E3], d: type[E4], /
    ) -> _Registers[_One[E1 | E2 | E3 | E4]]: ...
    @overload
    def on(
        self, a: type[E1], b: type[E2], c: type[E3], d: type[E4], e: type[E5], /
    ) -> _Registers[_One[E1 | E2 | E3 | E4 | E5]]: ...
    @overload
    def on(
        self, a: type[E1], b: type[E2], c: type[E3], d: type[E4], e: type[E5], f: type[E6], /
    ) -> _Registers[_One[E1 | E2 | E3 | E4 | E5 | E6]]: ...
    def on(self, *event_classes: type[Event]) -> _Registers[Handler]:
        def register(fn: Handler) -> Handler:
            for cls in event_classes:
                self.handlers[cls.event_type()] = fn
                self._topics.add(cls.topic)
            return fn

        return register

    @overload
    def on_batch(self, a: type[E1], /) -> _Registers[_Many[E1]]: ...
    @overload
    def on_batch(self, a: type[E1], b: type[E2], /) -> _Registers[_Many[E1 | E2]]: ...
    @overload
    def on_batch(
        self, a: type[E1], b: type[E2], c: type[E3], /
    ) -> _Registers[_Many[E1 | E2 | E3]]: ...
    @overload
    def on_batch(
        self, a: type[E1], b: type[E2], c: type[E3], d: type[E4], /
    ) -> _Registers[_Many[E1 | E2 | E3 | E4]]: ...
    @overload
    def on_batch(
        self, a: type[E1], b: type[E2], c: type[E3], d: type[E4], e: type[E5], /
    ) -> _Registers[_Many[E1 | E2 | E3 | E4 | E5]]: ...
    @overload
    def on_batch(
        self, a: type[E1], b: type[E2], c: type[E3], d: type[E4], e: type[E5], f: type[E6], /
    ) -> _Registers[_Many[E1 | E2 | E3 | E4 | E5 | E6]]: ...
    def on_batch(self, *event_classes: type[Event]) -> _Registers[BatchHandler]:
        def register(fn: BatchHandler) -> BatchHandler:
            for cls in event_classes:
                if cls.event_type() not in self.handlers:
                    raise ValueError(
                        f"{cls.__name__}: register its one-event handler (on) before on_batch"
                    )
                self.batch_handlers[cls.event_type()] = fn
            return fn

        return register

    @property
    def topics(self) -> list[str]:
        return sorted(self._topics)

    @property
    def dead_letter_topic(self) -> str:
        return dead_letter_topic(self.group_id)


class _Stopping(Exception):
    """Raised inside processing when the runner is asked to stop before a record is done."""


@dataclass
class _Decoded:
    """A fetched record, read: its event, envelope and handler (None: not for this group)."""

    record: Record
    event: Event
    meta: EventMeta
    handler: Handler | None


_Read = _Decoded | Record  # a fetched record, decoded, or left as it came when unreadable


def _position(event_id: str, record: Record) -> tuple[str, str, int, int]:
    return (event_id, record.topic, record.partition, record.offset)


def _record(item: _Read) -> Record:
    return item.record if isinstance(item, _Decoded) else item


def _partition(item: _Read) -> TopicPartition:
    record = _record(item)
    return TopicPartition(record.topic, record.partition)


def _done(done: dict[TopicPartition, Record], record: Record) -> None:
    done[TopicPartition(record.topic, record.partition)] = record


@dataclass
class _Lane:
    """One partition's records read and not yet applied, and the task applying some of them."""

    waiting: deque[_Read] = field(default_factory=deque)
    # The offset of the last record this lane took: a record at or before it is one read again
    # (a rebalance gave the partition back from its committed offset), and it is in hand.
    last: int = -1
    task: asyncio.Task[None] | None = None


# How long a fetch waits for records to arrive: of every partition, and of some only (the
# others' lanes have a batch waiting, and may catch up while it waits).
FETCH_WAIT_MS = 500
FETCH_WAIT_PARTIAL_MS = 20


class ConsumerRunner:
    """Runs one consumer group: getmany → per partition, a transaction (effects + inbox) → commit.

    Different partitions' records are applied at once, up to ``concurrency`` transactions at a
    time, each on its own connection; a partition's own records are applied in order, one
    transaction after the other, and its offset is committed after each. On SQLite (one writer
    at a time) partitions are applied one after the other.
    """

    def __init__(
        self,
        *,
        subscriptions: Subscriptions,
        registry: EventRegistry,
        db: Database,
        settings: Settings,
        consumer: AIOKafkaConsumer,
        dlq_producer: AIOKafkaProducer,
        resources: Mapping[str, Any] | None = None,
        person_keys: PersonKeyRing | None = None,
        commit_label: str = "",
        floors: Mapping[TopicPartition, int] | None = None,
    ) -> None:
        self.subs = subscriptions
        # The keys that open events' personal fields; None: this service reads no names.
        self.person_keys = person_keys
        self.resources: Mapping[str, Any] = dict(resources or {})
        self.registry = registry
        self.db = db
        self.settings = settings
        self.consumer = consumer
        self.producer = dlq_producer
        self.service = settings.service_name
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.processed = 0
        self.failures = 0  # failures that made the runner start over from committed offsets
        self.concurrency = self._concurrency()
        self._slots = asyncio.Semaphore(self.concurrency)
        self.journal = Journal(db, subscriptions.group_id) if settings.consumer_journal else None
        # Offsets are committed labelled with ``commit_label``: the group's members may apply to
        # different databases for a while (reporting's generations, at a switch-over). A
        # partition's committed offset labelled otherwise was committed by a member applying
        # elsewhere, and ``db`` holds for sure only what comes before the partition's floor:
        # such a partition is read again from its floor (the inbox drops what ``db`` holds).
        self.commit_label = commit_label
        # A floor rises as the runner applies: it reads only from vetted positions, so ``db``
        # holds everything before what it applied. (A broker that keeps no commit metadata,
        # Tansu, makes every committed label look foreign: the re-read then starts there.)
        self.floors: dict[TopicPartition, int] = dict(floors or {})
        # Partitions whose next records come from a committed offset not looked at yet.
        self.unvetted: set[TopicPartition] = set(consumer.assignment()) if self.floors else set()

    def reassigned(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions (re)assigned to this member: they resume from their committed offsets,
        which are vetted before their records are applied. Called from the consumer's rebalance
        listener, before any record of the new assignment is fetched."""
        if self.floors:
            self.unvetted |= set(partitions)

    def _concurrency(self) -> int:
        """Partitions applied at once: the setting, at most the pool's connections; on SQLite
        one, as its writers queue for one lock and a long queue ends in 'database is locked'."""
        if self.db.is_sqlite:
            return 1
        pool = self.db.engine.pool
        connections = pool.size() if isinstance(pool, QueuePool) else 1
        return max(1, min(self.settings.consumer_concurrency, connections))

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"consumer-{self.subs.group_id}")

    async def stop(self) -> None:
        """Stop consuming and wait for the loop to end, however it ends.

        A loop that had already ended (cancelled, or an error nothing below handled) made this
        raise its outcome, and the caller's shutdown stopped there: the app's relay went on
        running and its connections stayed open after the app was gone. One that does not end
        within 30 s (or when this stop is cancelled) is cancelled, and awaited too.
        """
        self._stopping.set()
        task = self._task
        if task is None:
            return
        try:
            await asyncio.wait({task}, timeout=30)
        finally:  # also when this stop is itself cancelled: the loop must not outlive it
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:
            log.warning(
                "consumer_ended_before_stop",
                group=self.subs.group_id,
                error=f"{type(task.exception()).__name__}: {task.exception()}"[:300],
            )

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run(self) -> None:
        """Consume until stopped. A failure nothing below handles does not end the runner: a
        dead runner would stay in its group, heartbeating, holding partitions nobody reads.
        It is logged, the partitions go back to their committed offsets (what was fetched and
        not committed is read again, never skipped) and consuming starts over."""
        rewind = False
        delay = 0.5
        while not self._stopping.is_set():
            try:
                if rewind:
                    await self._rewind()
                    rewind = False
                await self._consume()
            except Exception as exc:
                self.failures += 1
                log.error(
                    "consumer_failed",
                    group=self.subs.group_id,
                    error=f"{type(exc).__name__}: {exc}"[:500],
                    retry_in=delay,
                    exc_info=True,
                )
                rewind = True
                await self._sleep(delay)
                delay = min(delay * 2, 10.0)
            else:
                return

    async def _rewind(self) -> None:
        self.reassigned(self.consumer.assignment())
        positions = await rewind_to_committed(self.consumer)
        log.info("consumer_rewound", group=self.subs.group_id, committed=positions)

    async def _consume(self) -> None:
        """Fetch and read while the partitions' lanes apply what was read before.

        Reading (decoding and validating each record) is CPU work, applying is mostly waiting
        for the database, so the next fetch is read while lanes apply. Each partition's records
        wait in its lane; a lane applies up to a batch of them in one transaction, then commits
        the partition's offset, then takes the next batch. A partition with a full batch
        waiting is left out of the next fetches until its lane catches up: what the consumer
        holds of it stays there, and the broker is not asked for more of it. (Pausing it
        instead made aiokafka drop what it held, fetched again after the resume: four to eleven
        times the records' bytes, sent by the broker and read by this process.) Records read
        and not applied when the runner stops are not committed: they are read again.
        """
        lanes: dict[TopicPartition, _Lane] = {}
        fetch: asyncio.Task[list[_Read]] | None = None
        failed = True
        try:
            while not self._stopping.is_set():
                if fetch is None:
                    fetch = self._next_fetch(lanes)
                busy = {lane.task for lane in lanes.values() if lane.task is not None}
                waits = busy if fetch is None else {fetch, *busy}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for lane in lanes.values():
                    if lane.task is not None and lane.task.done():
                        task, lane.task = lane.task, None
                        task.result()  # a failure nothing below handles: run() starts over
                if fetch is not None and fetch.done():
                    read, fetch = fetch.result(), None
                    if self.unvetted:  # what was read of a partition lowered is dropped
                        read = await self._vet(lanes, read)
                    self._queue(lanes, read)
                self._dispatch(lanes)
            failed = False
        finally:
            if fetch is not None and not fetch.done():
                fetch.cancel()
                with suppress(asyncio.CancelledError):
                    await fetch
            tasks = [lane.task for lane in lanes.values() if lane.task is not None]
            if failed:  # their transactions roll back; their offsets are not committed
                for task in tasks:
                    task.cancel()
            # Stopping, each lane ends after the record in hand and commits what it finished.
            await asyncio.gather(*tasks, return_exceptions=True)

    def _next_fetch(self, lanes: dict[TopicPartition, _Lane]) -> asyncio.Task[list[_Read]] | None:
        """The next fetch, of the assigned partitions whose lane has less than a batch waiting;
        None while every one has a batch waiting and a lane is applying (its end wakes the loop).

        A fetch that leaves a partition out waits for records a short while only: that
        partition's lane may catch up meanwhile, and its records are in hand.
        """
        batch = self.settings.consumer_batch
        full = {tp for tp, lane in lanes.items() if len(lane.waiting) >= batch}
        if not full or all(lane.task is None for lane in lanes.values()):
            return asyncio.create_task(self._fetch_and_read((), FETCH_WAIT_MS))
        ready = self.consumer.assignment() - full
        if not ready:
            return None
        return asyncio.create_task(self._fetch_and_read(ready, FETCH_WAIT_PARTIAL_MS))

    async def _vet(self, lanes: dict[TopicPartition, _Lane], read: list[_Read]) -> list[_Read]:
        """Partitions not vetted since their assignment: one whose offset was committed past
        its floor under another label is read again from its floor, and what was read of it
        from the committed offset is dropped. Reporting's replica on a new generation, given a
        partition by one still applying to the old generation, would otherwise skip what that
        one applied there after the switch-over."""
        vetting = self.unvetted & self.consumer.assignment()
        self.unvetted.clear()
        past = {tp for tp in vetting if tp in self.floors}
        if not past:
            return read
        try:
            committed = await committed_labels(self.consumer, past)
        except KafkaError as exc:  # not known: read again from the floors, the safe way
            log.warning("consumer_committed_unknown", group=self.subs.group_id, error=str(exc))
            committed = {tp: (self.floors[tp] + 1, None) for tp in past}
        lower = {
            tp: (offset, label)
            for tp, (offset, label) in committed.items()
            if offset > self.floors[tp]
            and label != self.commit_label
            and tp in self.consumer.assignment()
        }
        if not lower:
            return read
        for tp in lower:
            self.consumer.seek(tp, self.floors[tp])
            if (lane := lanes.get(tp)) is not None:
                lane.waiting.clear()
                lane.last = -1
        log.info(
            "consumer_read_again_from_floor",
            group=self.subs.group_id,
            label=self.commit_label,
            partitions={
                str(tp): {"floor": self.floors[tp], "committed": offset, "under": label}
                for tp, (offset, label) in lower.items()
            },
        )
        return [item for item in read if _partition(item) not in lower]

    def _queue(self, lanes: dict[TopicPartition, _Lane], read: Sequence[_Read]) -> None:
        """Each record into its partition's lane, in order; one in hand already is dropped."""
        for item in read:
            record = _record(item)
            lane = lanes.setdefault(_partition(item), _Lane())
            if record.offset > lane.last:
                lane.waiting.append(item)
                lane.last = record.offset

    def _dispatch(self, lanes: dict[TopicPartition, _Lane]) -> None:
        """Start the idle lanes that have records waiting; forget partitions no longer
        assigned."""
        assigned = self.consumer.assignment()
        batch = self.settings.consumer_batch
        for tp, lane in list(lanes.items()):
            if tp not in assigned:
                # Revoked: another member reads it from its committed offset. What is applying
                # goes on; its offset commit is refused, and the inbox drops the re-read.
                lane.waiting.clear()
                lane.last = -1
            if lane.task is None:
                if not lane.waiting:
                    del lanes[tp]
                    continue
                run = [lane.waiting.popleft() for _ in range(min(batch, len(lane.waiting)))]
                lane.task = asyncio.create_task(self._apply_lane(tp, run))

    async def _apply_lane(self, tp: TopicPartition, read: list[_Read]) -> None:
        """One partition's records, in order, on a connection of their own; then its offset."""
        async with self._slots:
            done = await self._apply_read(read)
        if tp in done:
            position = done[tp].offset + 1
            if tp in self.floors:
                self.floors[tp] = max(self.floors[tp], position)
            await self._commit({tp: position})
            self._report_lag(tp, position)

    async def _fetch_and_read(
        self, partitions: Iterable[TopicPartition], wait_ms: int
    ) -> list[_Read]:
        """Records of ``partitions`` (none named: of every assigned one) fetched and read."""
        try:
            batches = await self.consumer.getmany(
                *partitions, timeout_ms=wait_ms, max_records=self.settings.consumer_batch
            )
        except KafkaError as exc:
            log.warning("consumer_fetch_failed", group=self.subs.group_id, error=str(exc))
            await self._sleep(1.0)
            return []
        return await self._read([r for records in batches.values() for r in records])

    async def process_batch(self, records: Sequence[Record]) -> dict[TopicPartition, Record]:
        """Handle one fetch's records, each partition's in order; return each one's last done.

        Consecutive readable records, of every partition in the fetch, are applied in one
        transaction whose first statement claims their inbox rows: a few round trips per
        fetch instead of several per record. If anything in that transaction fails, it is
        rolled back and the same records go one by one through ``process`` (retries, dead
        letters, waiting for the database), so a bad record costs its batch the shortcut and
        nothing else. The caller commits each partition's offset after its returned record
        only: everything up to it is committed in the database.
        """
        return await self._apply_read(await self._read(records))

    async def _read(self, records: Sequence[Record]) -> list[_Read]:
        """Each record decoded; one that cannot be read stays a bare record, in its place."""
        read: list[_Read] = []
        for n, record in enumerate(records, 1):
            try:
                event, meta = await self._decode(record)
            except UnreadableEvent:
                read.append(record)
            else:
                read.append(_Decoded(record, event, meta, self.subs.handlers.get(meta.type)))
            if n % 50 == 0:
                await asyncio.sleep(0)  # let the fetch being applied hear from its database
        return read

    async def _decode(self, record: Record) -> tuple[Event, EventMeta]:
        """The record's event as its handler gets it: validated, upcast, personal fields opened
        with the person's key (the one place events are decrypted)."""
        event, meta = from_kafka(
            record.key, record.value, list(record.headers or []), self.registry
        )
        return await open_personal(event, meta, self.person_keys)

    async def _apply_read(self, read: Sequence[_Read]) -> dict[TopicPartition, Record]:
        done: dict[TopicPartition, Record] = {}
        pending: list[_Decoded] = []
        try:
            for item in read:
                if self._stopping.is_set():
                    break
                if isinstance(item, _Decoded):
                    pending.append(item)
                    continue
                await self._apply(pending, done)
                pending = []
                await self.process(item)  # to the dead-letter topic, after those before it
                _done(done, item)
            await self._apply(pending, done)
        except _Stopping:
            pass
        return done

    async def _apply(self, items: list[_Decoded], done: dict[TopicPartition, Record]) -> None:
        if not items:
            return
        if self._stopping.is_set():
            raise _Stopping
        if self.journal is not None:
            await self.journal.delivered(
                [_position(i.meta.id, i.record) for i in items if i.handler]
            )
        try:
            outcomes = await self._handle_together(items)
        except Exception as exc:
            log.info(
                "consumer_batch_one_by_one",
                records=len(items),
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            for item in items:
                if self._stopping.is_set():
                    raise _Stopping from exc
                await self.process(item.record)
                _done(done, item.record)
            return
        pairs = list(zip(items, outcomes, strict=True))
        counts = Counter((i.record.topic, o) for i, o in pairs)
        for (topic, outcome), n in counts.items():
            metrics.EVENTS_CONSUMED.labels(self.service, self.subs.group_id, topic, outcome).inc(n)
        applied = [i.meta.time for i, o in pairs if o != "ignored" and i.meta.time]
        if applied:
            metrics.LAST_EVENT_APPLIED.labels(self.service, self.subs.group_id).set(
                applied[-1].timestamp()
            )
        for item in items:
            _done(done, item.record)

    async def _handle_together(self, items: list[_Decoded]) -> list[str]:
        """One transaction: every new record's effect and its inbox row, or nothing.

        The inbox rows go first, in one statement that skips the event ids already there and
        returns the ones it wrote: those, and only those, are new. A concurrent delivery of
        the same event waits on the row and then finds it taken.
        """
        candidates: dict[str, _Decoded] = {}
        for item in items:
            if item.handler is not None:
                candidates.setdefault(item.meta.id, item)  # a repeat in the batch is a duplicate
        if not candidates:
            return ["ignored"] * len(items)
        async with self.db.session() as session:
            await plan_each_statement(session)  # batch lookups: never a stale generic plan
            fresh = await self._claim(session, list(candidates.values()))
            new = [item for item in candidates.values() if item.meta.id in fresh]
            outcomes = [
                "ignored"
                if item.handler is None
                else "handled"
                if candidates[item.meta.id] is item and item.meta.id in fresh
                else "duplicate"
                for item in items
            ]
            start = 0
            while start < len(new):
                batch_handler = self.subs.batch_handlers.get(new[start].meta.type)
                end = start + 1
                if batch_handler is None:
                    await self._handle_one(session, new[start])
                else:
                    while (
                        end < len(new)
                        and self.subs.batch_handlers.get(new[end].meta.type) is batch_handler
                    ):
                        end += 1
                    await self._handle_run(session, batch_handler, new[start:end])
                start = end
            if new:
                if self.journal is not None:
                    await self.journal.applied(
                        session, [_position(i.meta.id, i.record) for i in new]
                    )
                await session.commit()
        self.processed += len(new)
        return outcomes

    async def _claim(self, session: AsyncSession, items: list[_Decoded]) -> set[str]:
        """Write the inbox rows of ``items`` not there yet; return the event ids written."""
        now = utcnow()
        rows = [
            {
                "consumer_group": self.subs.group_id,
                "event_id": item.meta.id,
                "event_type": item.meta.type,
                "topic": item.record.topic,
                "partition": item.record.partition,
                "offset": item.record.offset,
                "handled_at": now,
            }
            for item in items
        ]
        table = table_of(InboxMessage)
        written = await insert_rows(
            session,
            table,
            rows,
            key=["consumer_group", "event_id"],
            returning=table.c.event_id,
        )
        return set(written)

    async def _handle_one(self, session: AsyncSession, item: _Decoded) -> None:
        assert item.handler is not None
        set_traceparent(new_traceparent(item.meta.traceparent))
        structlog.contextvars.bind_contextvars(event_id=item.meta.id, event_type=item.meta.type)
        try:
            await item.handler(
                item.event,
                HandlerContext(session=session, meta=item.meta, resources=self.resources),
            )
        finally:
            structlog.contextvars.unbind_contextvars("event_id", "event_type", "trace_id")
            set_traceparent(None)

    async def _handle_run(
        self, session: AsyncSession, handler: BatchHandler, run: list[_Decoded]
    ) -> None:
        structlog.contextvars.bind_contextvars(event_type=run[0].meta.type, events=len(run))
        try:
            await handler(
                [Delivered(item.event, item.meta) for item in run],
                BatchContext(session=session, resources=self.resources),
            )
        finally:
            structlog.contextvars.unbind_contextvars("event_type", "events")

    async def process(self, record: Record) -> str:
        """Handle one record to the end: handled, duplicate, ignored or dead-lettered."""
        try:
            event, meta = await self._decode(record)
        except UnreadableEvent as exc:
            await self._dead_letter(record, reason=exc.reason, error=exc.detail, attempts=0)
            return "dead_lettered"
        handler = self.subs.handlers.get(meta.type)
        if handler is None:
            self._count(record, "ignored")
            return "ignored"
        set_traceparent(new_traceparent(meta.traceparent))
        structlog.contextvars.bind_contextvars(event_id=meta.id, event_type=meta.type)
        try:
            return await self._handle_with_retries(record, event, meta, handler)
        finally:
            structlog.contextvars.unbind_contextvars("event_id", "event_type", "trace_id")
            set_traceparent(None)

    async def _handle_with_retries(
        self, record: Record, event: Event, meta: EventMeta, handler: Handler
    ) -> str:
        attempts = 0
        unavailable_since: float | None = None
        while True:
            try:
                outcome = await self._handle_once(record, event, meta, handler)
                self._count(record, outcome)
                if meta.time:
                    metrics.LAST_EVENT_APPLIED.labels(self.service, self.subs.group_id).set(
                        meta.time.timestamp()
                    )
                return outcome
            except Exception as exc:
                if is_unavailable(exc):
                    # Not the event's fault: wait for the database, never dead-letter, never commit.
                    loop_time = asyncio.get_running_loop().time()
                    unavailable_since = unavailable_since or loop_time
                    log.warning("consumer_database_unavailable", error=str(exc)[:300])
                    if self._stopping.is_set():
                        raise _Stopping from exc
                    await self._sleep(min(5.0, 0.5 + (loop_time - unavailable_since) / 4))
                    continue
                attempts += 1
                log.warning(
                    "handler_failed", attempt=attempts, error=f"{type(exc).__name__}: {exc}"[:500]
                )
                if attempts >= self.settings.consumer_max_attempts:
                    await self._dead_letter(
                        record,
                        reason="handler_failed",
                        error=f"{type(exc).__name__}: {exc}",
                        attempts=attempts,
                        meta=meta,
                    )
                    return "dead_lettered"
                await self._sleep(
                    self.settings.consumer_retry_backoff_seconds * 2 ** (attempts - 1)
                )

    async def _handle_once(
        self, record: Record, event: Event, meta: EventMeta, handler: Handler
    ) -> str:
        async with self.db.session() as session:
            await plan_each_statement(session)  # the handlers' batch lookups, of one event here
            if await self._seen(session, meta.id):
                return "duplicate"
            await handler(
                event, HandlerContext(session=session, meta=meta, resources=self.resources)
            )
            session.add(
                InboxMessage(
                    consumer_group=self.subs.group_id,
                    event_id=meta.id,
                    event_type=meta.type,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                )
            )
            if self.journal is not None:
                await self.journal.applied(session, [_position(meta.id, record)])
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                async with self.db.session() as check:
                    if await self._seen(check, meta.id):
                        return "duplicate"  # a concurrent delivery won the race
                raise
        self.processed += 1
        return "handled"

    async def _seen(self, session: AsyncSession, event_id: str) -> bool:
        found = await session.scalar(
            select(InboxMessage.id).where(
                InboxMessage.consumer_group == self.subs.group_id, InboxMessage.event_id == event_id
            )
        )
        return found is not None

    async def _dead_letter(
        self,
        record: Record,
        *,
        reason: str,
        error: str,
        attempts: int,
        meta: EventMeta | None = None,
    ) -> None:
        headers = [(k, v) for k, v in (record.headers or []) if not k.startswith("dlq_")]
        extra = {
            "dlq_reason": reason,
            "dlq_error": error[:4000],
            "dlq_original_topic": record.topic,
            "dlq_original_partition": str(record.partition),
            "dlq_original_offset": str(record.offset),
            "dlq_consumer_group": self.subs.group_id,
            "dlq_attempts": str(attempts),
        }
        headers += [(k, v.encode()) for k, v in extra.items()]
        # Until the dead letter is safely on its topic the record is not done: never drop it.
        while True:
            try:
                await self.producer.send_and_wait(
                    self.settings.topic(self.subs.dead_letter_topic),
                    key=record.key,
                    value=record.value,
                    headers=headers,
                )
                break
            except KafkaError as exc:
                log.error("dead_letter_publish_failed", error=str(exc))
                if self._stopping.is_set():
                    raise _Stopping from exc
                await self._sleep(1.0)
        header_text = {k: v.decode("utf-8", errors="replace") for k, v in headers}
        try:
            async with self.db.session() as session:
                session.add(
                    DeadLetter(
                        consumer_group=self.subs.group_id,
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        key=record.key.decode("utf-8", errors="replace") if record.key else None,
                        headers=json.dumps(header_text, ensure_ascii=False),
                        value=record.value.decode("utf-8", errors="replace")
                        if record.value
                        else None,
                        event_id=meta.id if meta else header_text.get("ce_id"),
                        event_type=meta.type if meta else header_text.get("ce_type"),
                        reason=reason,
                        error=error[:4000],
                        attempts=attempts,
                    )
                )
                await session.commit()
        except Exception as exc:  # the topic has it; the table is the operator's convenience
            log.error("dead_letter_row_failed", error=str(exc)[:300])
        metrics.EVENTS_DEAD_LETTERED.labels(self.service, self.subs.group_id, reason).inc()
        self._count(record, "dead_lettered")
        log.error(
            "event_dead_lettered",
            reason=reason,
            error=error[:500],
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            dead_letter_topic=self.subs.dead_letter_topic,
        )

    async def _commit(self, positions: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(
                {tp: (offset, self.commit_label) for tp, offset in positions.items()}
            )
        except (CommitFailedError, IllegalStateError) as exc:
            # A partition moved to another member mid-batch: it re-reads from the last commit,
            # and the inbox turns the re-read into duplicates.
            log.warning(
                "offset_commit_failed", partitions=[str(tp) for tp in positions], error=str(exc)
            )
        except KafkaError as exc:
            # The coordinator unreachable or moving (a broker down or frozen): the effects are
            # committed in the database, so going on is safe; the next commit covers these
            # offsets too, and if none comes first, a re-read meets the inbox.
            log.warning(
                "offset_commit_failed",
                partitions=[str(tp) for tp in positions],
                error=f"{type(exc).__name__}: {exc}",
            )

    def _report_lag(self, tp: TopicPartition, position: int) -> None:
        highwater = self.consumer.highwater(tp)
        if highwater is not None:
            metrics.CONSUMER_LAG.labels(
                self.service, self.subs.group_id, tp.topic, str(tp.partition)
            ).set(max(0, highwater - position))

    def _count(self, record: Record, outcome: str) -> None:
        metrics.EVENTS_CONSUMED.labels(
            self.service, self.subs.group_id, record.topic, outcome
        ).inc()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass
