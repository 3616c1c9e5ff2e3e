"""Projection generations: a rebuild fills a fresh database while the live one answers, then
the running service switches reads and its consumer over to it.

The service's own database (DATABASE_URL) is the control database: it holds the targets and
their audit trail (set by hand, never rebuilt) and the ``projection_generations`` table naming
the live generation. Generation 0 is the projection tables of that database itself; generation
n ≥ 1 is a database of its own next to it (SQLite: ``<file>.gen<n>.db``; PostgreSQL: database
``<name>_gen<n>`` on the same server).

A rebuild (``Projections.start_rebuild``):
1. migrates generation n+1 and replays every reporting topic into it from offset 0, with the
   service's own handlers and inbox, without a consumer group (nothing of the live consumer's
   is touched), until a fresh look at the end offsets finds nothing more;
2. then, under the switch lock and with the live consumer paused (the shared messaging's
   ``consumer_paused``: its runner stopped, its consumer rewound to the group's committed
   offsets, so records fetched but not applied are read again, not lost): replays once more to
   the end, so generation n+1 holds everything the live one holds; records n+1 as live in the
   control table; points reads and the live consumer (``consume_into``) at it.
The live consumer is the one every service has, built and run by the shared messaging; this
module only tells it which database to apply events to.
The live consumer keeps its group and offsets: what it re-reads from its committed offsets was
replayed already, and generation n+1's inbox (same group name) turns it into a duplicate, while
everything published after the last replay is applied by the live runner, once.
The old generation is kept (retired) until the operator drops it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiokafka import TopicPartition
from fastapi import FastAPI
from sqlalchemy import delete, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from bekal.reporting import models
from bekal.reporting.handlers import subscriptions
from bekal.reporting.models import ProjectionGeneration
from bekal.reporting.services import common, people
from bekal.shared.db import Database, table_of
from bekal.shared.events import catalogue
from bekal.shared.messaging.consumer import ConsumerRunner
from bekal.shared.messaging.kafka import make_reader, partitions_of
from bekal.shared.messaging.models import InboxMessage
from bekal.shared.migrations import upgrade
from bekal.shared.settings import Settings

log = structlog.get_logger(__name__)

BUILDING, LIVE, RETIRED, FAILED, DROPPED = "building", "live", "retired", "failed", "dropped"

# What a generation holds: every table built from events (targets are not: they stay in the
# control database, whatever generation is live).
PROJECTION_MODELS: tuple[type[models.Base], ...] = (
    models.Facility,
    models.Program,
    models.TrainingSession,
    models.Enrollment,
    models.Certificate,
    models.CertificateRevocation,
    models.Participant,
    models.ErasedParticipant,
    models.MergedParticipant,
    models.WaitlistEntry,
    models.ProjectionState,
)

Progress = Callable[[int, int], None]

# Records still behind when a rebuild stops chasing and pauses the live consumer to finish.
CLOSE_ENOUGH = 1000
# How often a replica looks whether another one switched the live generation.
WATCH_SECONDS = 2.0
# Every so many rounds, erasures applied to the live generation are applied to retired ones.
ERASURE_SYNC_ROUNDS = 5
# For the last round: read to the end offsets seen once, then stop whatever came after.
_ANYTHING = 2**62


def _label(number: int) -> str:
    """What the live consumer's offset commits are labelled with on generation ``number``."""
    return f"generation:{number}"


class NotFresh(RuntimeError):
    """The generation's database already holds applied events: a rebuild starts from nothing."""


class RebuildRunning(RuntimeError):
    """Only one rebuild at a time."""


class CannotDrop(RuntimeError):
    """The live generation, or one being built, is not dropped."""


# --- where a generation lives -----------------------------------------------------------------


def generation_location(service_url: str, number: int) -> str:
    """The generation's database: a file path (SQLite) or a database name (PostgreSQL).

    Only the location is stored, never a URL, so no password lands in a table.
    """
    url = make_url(service_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "reporting.db")
        return str(path.with_name(f"{path.stem}.gen{number}{path.suffix or '.db'}"))
    return f"{url.database}_gen{number}"


def generation_url(service_url: str, location: str | None) -> str:
    if location is None:
        return service_url
    return make_url(service_url).set(database=location).render_as_string(hide_password=False)


async def create_database(service_url: str, location: str) -> None:
    """PostgreSQL: create the generation's database unless the operator made it beforehand."""
    url = make_url(service_url)
    if url.get_backend_name() == "sqlite":
        return  # the file is made on first connection
    engine = create_async_engine(service_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": location}
            )
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{location}"'))
    finally:
        await engine.dispose()


async def drop_database(service_url: str, location: str) -> None:
    url = make_url(service_url)
    if url.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            await asyncio.to_thread(Path(location + suffix).unlink, missing_ok=True)
        return
    engine = create_async_engine(service_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{location}" WITH (FORCE)'))
    finally:
        await engine.dispose()


# --- replaying the topics into one database ---------------------------------------------------


class Replay:
    """Every reporting topic read from offset 0, without a consumer group, into ``db``."""

    def __init__(self, settings: Settings, db: Database, dlq_producer: Any) -> None:
        self.settings = settings
        self.db = db
        self.consumer = make_reader(settings)
        # Same group name as the live consumer, so the inboxes agree on what is a duplicate;
        # metrics under a service name of their own, so the live figures are not disturbed.
        self.runner = ConsumerRunner(
            subscriptions=subscriptions,
            registry=catalogue,
            db=db,
            settings=settings.model_copy(
                update={"service_name": f"{settings.service_name}-rebuild"}
            ),
            consumer=self.consumer,
            dlq_producer=dlq_producer,
            resources=people.handler_resources(settings),
        )
        self.partitions: list[TopicPartition] = []
        self.done = 0
        self.outcomes: dict[str, int] = {}

    async def start(self) -> None:
        async with self.db.session() as s:
            if await s.scalar(select(func.count()).select_from(InboxMessage)):
                raise NotFresh(f"{self.db.url.split('@')[-1]} already holds applied events")
        await self.consumer.start()
        self.partitions = await partitions_of(
            self.consumer, [self.settings.topic(t) for t in subscriptions.topics]
        )
        self.consumer.assign(self.partitions)
        await self.consumer.seek_to_beginning(*self.partitions)

    async def catch_up(
        self,
        progress: Progress | None = None,
        *,
        close_enough: int = 0,
        at_least: dict[TopicPartition, int] | None = None,
    ) -> None:
        """Apply records up to the end offsets seen, and again, until at most ``close_enough``
        records are behind. Each round reads to a fixed end, so a steady stream of new events
        cannot keep it chasing forever.

        ``at_least``: offsets to read up to whatever the broker reports as the end (the live
        group's committed offsets at the switch-over). Tansu 0.6 reports a partition's end as
        its last batch's first offset + 1: the rest of that batch, which the live consumer may
        have applied and committed already, would otherwise never reach the new generation."""
        while True:
            ends = await self.consumer.end_offsets(self.partitions)
            for tp, offset in (at_least or {}).items():
                if tp in ends:
                    ends[tp] = max(ends[tp], offset)
            while behind := await self._behind(ends):
                if progress:
                    progress(self.done, self.done + behind)
                batches = await self.consumer.getmany(timeout_ms=1000, max_records=500)
                for records in batches.values():
                    for record in records:
                        outcome = await self.runner.process(record)
                        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
                        self.done += 1
            behind = await self._behind(await self.consumer.end_offsets(self.partitions))
            if progress:
                progress(self.done, self.done + behind)
            if behind <= close_enough:
                return

    async def positions(self) -> dict[TopicPartition, int]:
        return {tp: await self.consumer.position(tp) for tp in self.partitions}

    async def _behind(self, ends: dict[TopicPartition, int]) -> int:
        positions = {tp: await self.consumer.position(tp) for tp in self.partitions}
        return sum(max(0, ends[tp] - positions[tp]) for tp in self.partitions)

    async def stop(self) -> None:
        await self.consumer.stop()


# --- the running service's generations --------------------------------------------------------


@dataclass
class Generation:
    number: int
    db: Database


class Projections:
    """The live generation (reads and the live consumer) and at most one rebuild under way."""

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        self.settings = settings
        self.key = people.erasure_key(settings)
        self.control: Database = app.state.db
        self.messaging = app.state.messaging
        self.live = Generation(0, self.control)
        self.building: int | None = None
        self.progress: tuple[int, int] = (0, 0)
        self._others: list[Database] = []  # retired ones still open (requests in flight)
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        """Point reads and the live consumer at the live generation; before messaging starts."""
        async with self.control.session() as s:
            row = await s.scalar(
                select(ProjectionGeneration).where(ProjectionGeneration.status == LIVE)
            )
        if row is not None and row.location is not None:
            self.live = Generation(row.number, self._database(row.location))
        await self.key_old_tombstones(self.live.db)
        self._consume_into(self.live, row)
        self._spawn(self._follow_other_replicas(), "reporting-generation-watch")

    def _database(self, location: str | None) -> Database:
        if location is None:
            return self.control
        return Database(
            generation_url(self.settings.database_url, location),
            pool_size=self.settings.database_pool_size,
        )

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow_other_replicas(self) -> None:
        """Another replica may switch over: follow it to the generation the control table names.

        Its consumer moves to the switch-over offsets, so what this replica applied to the old
        generation after the rebuild's last read is applied to the new one too (once: the inbox).
        """
        rounds = 0
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            rounds += 1
            if rounds % ERASURE_SYNC_ROUNDS == 0:
                try:
                    await self.key_old_tombstones(self.live.db)
                    await self.erase_in_retired()
                except Exception as exc:  # tried again next time
                    log.warning("retired_erasure_failed", error=str(exc)[:300])
            try:
                async with self.control.session() as s:
                    row = await s.scalar(
                        select(ProjectionGeneration).where(ProjectionGeneration.status == LIVE)
                    )
            except Exception as exc:  # the database away for a moment: look again later
                log.warning("generation_watch_failed", error=str(exc)[:300])
                continue
            if row is None or row.number == self.live.number or self.building is not None:
                continue
            try:
                await self._follow(row)
            except Exception as exc:  # a rebalance under way, the broker away: next round
                log.warning("generation_follow_failed", error=f"{type(exc).__name__}: {exc}"[:300])

    async def _follow(self, row: ProjectionGeneration) -> None:
        async with self._lock:
            if row.number == self.live.number:
                return
            # The runner then reads again, from the switch-over offsets, each partition this
            # replica applied to the old generation after them (committed under its label).
            async with self.messaging.consumer_paused():
                old = self.live
                self.live = Generation(row.number, self._database(row.location))
                self._consume_into(self.live, row)
            if old.db is not self.control:
                self._others.append(old.db)
            log.info("projection_followed_switch_over", generation=row.number)

    def _consume_into(self, live: Generation, row: ProjectionGeneration | None) -> None:
        """The live consumer applies to ``live``, committing under its generation's label; a
        partition whose offset was committed under another generation's (by a replica still on
        it, or before the switch-over) resumes from the switch-over offsets at the latest."""
        if live.number == 0 or row is None:
            self.messaging.consume_into(live.db)
            return
        floors = {
            TopicPartition(topic, int(partition)): offset
            for name, offset in json.loads(row.switch_offsets or "{}").items()
            for topic, partition in [name.rsplit(":", 1)]
        }
        self.messaging.consume_into(live.db, label=_label(live.number), floors=floors)

    async def key_old_tombstones(self, db: Database) -> int:
        """Tombstones from before the ids of erased people were keyed (migration 0007), re-keyed
        with the secret only the service holds."""
        async with db.session() as s:
            done = await people.key_old_tombstones(session=s, key=self.key)
            if done:
                common.projections_changed(session=s, at=None)
            await s.commit()
        if done:
            log.info("erased_people_rekeyed", count=done)
        return done

    async def erase_in_retired(self) -> int:
        """Erasures reach the retired generations too: they receive no events, but must not
        keep what an erasure removed from the live one. Returns the people erased there.

        The tombstones hold no participant id: the ids a retired generation still files facts
        under are matched against the live tombstones with the key."""
        async with self.live.db.session() as s:
            erased = {
                tombstone: anonymous
                for tombstone, anonymous in await s.execute(
                    select(models.ErasedParticipant.id, models.ErasedParticipant.anonymous_id)
                )
                if anonymous is not None  # not re-keyed yet: next time
            }
        async with self.control.session() as s:
            retired = (
                await s.scalars(
                    select(ProjectionGeneration).where(ProjectionGeneration.status == RETIRED)
                )
            ).all()
        done = 0
        for row in retired:
            db = self._database(row.location)
            try:
                await self.key_old_tombstones(db)
                async with db.session() as s:
                    have = set((await s.scalars(select(models.ErasedParticipant.id))).all())
                    missing = set(erased) - have
                    if not missing:
                        continue
                    s.add_all(
                        models.ErasedParticipant(id=tombstone, anonymous_id=erased[tombstone])
                        for tombstone in missing
                    )
                    await s.flush()
                    for participant_id in await people.filed_ids(session=s):
                        if self.key.tombstone(participant_id) in missing:
                            await people.erase_participant(
                                session=s, key=self.key, participant_id=participant_id
                            )
                            done += 1
                    common.projections_changed(session=s, at=None)
                    await s.commit()
            finally:
                if db is not self.control:
                    await db.dispose()
        return done

    # --- rebuild ---

    async def start_rebuild(self) -> ProjectionGeneration:
        """Record generation n+1 as building and fill it in the background."""
        if self.building is not None:
            raise RebuildRunning(f"generasi {self.building} sedang dibangun")
        async with self.control.session() as s:
            # One at a time across replicas too (a crashed one's row is dropped first).
            other = await s.scalar(
                select(ProjectionGeneration.number).where(ProjectionGeneration.status == BUILDING)
            )
            if other is not None:
                raise RebuildRunning(f"generasi {other} sedang dibangun")
            number = (await s.scalar(select(func.max(ProjectionGeneration.number))) or 0) + 1
            row = ProjectionGeneration(
                number=number,
                location=generation_location(self.settings.database_url, number),
                status=BUILDING,
                started_at=datetime.now(UTC),
                records_done=0,
                records_total=0,
            )
            s.add(row)
            try:
                await s.commit()
            except IntegrityError as exc:  # another replica took number n+1 at the same moment
                raise RebuildRunning(f"generasi {number} sedang dibangun") from exc
        self.building, self.progress = number, (0, 0)
        self._spawn(self._rebuild(row), f"reporting-rebuild-{number}")
        return row

    def _show(self, done: int, total: int) -> None:
        self.progress = (done, total)

    async def _rebuild(self, row: ProjectionGeneration) -> None:
        assert row.location is not None
        db: Database | None = None
        replay: Replay | None = None
        try:
            await create_database(self.settings.database_url, row.location)
            url = generation_url(self.settings.database_url, row.location)
            migrating = asyncio.ensure_future(asyncio.to_thread(upgrade, "bekal.reporting", url))
            try:
                await asyncio.shield(migrating)
            except asyncio.CancelledError:
                # A thread cannot be stopped: a stop waits for the migration to end, rather
                # than leave it connected to the new database after the service has gone.
                await asyncio.gather(migrating, return_exceptions=True)
                raise
            db = self._database(row.location)
            await self.messaging.ready.wait()
            replay = Replay(self.settings, db, self.messaging.producer)
            await replay.start()
            log.info("projection_rebuild_started", generation=row.number)
            # Close enough: the rest is read while the live consumer is paused, a short moment.
            await replay.catch_up(self._show, close_enough=CLOSE_ENOUGH)
            await self._switch_over(row.number, replay)
            log.info("projection_switched_over", generation=row.number, outcomes=replay.outcomes)
        except asyncio.CancelledError:
            await self._record(row.number, status=FAILED, error="dihentikan sebelum selesai")
            if db is not None and db is not self.live.db:
                await db.dispose()
            raise
        except Exception as exc:
            log.exception("projection_rebuild_failed", generation=row.number)
            await self._record(row.number, status=FAILED, error=f"{type(exc).__name__}: {exc}")
            if db is not None and db is not self.live.db:
                await db.dispose()
        finally:
            self.building = None
            if replay is not None:
                await replay.stop()

    async def _switch_over(self, number: int, replay: Replay) -> None:
        async with self._lock, self.messaging.consumer_paused() as live:
            # With the live runner paused, generation n+1 catches up with everything the
            # live one holds (up to the group's committed offsets at least); whatever comes
            # after is the live runner's, from those offsets.
            committed: dict[TopicPartition, int] = {}
            if live is not None:
                for tp in replay.partitions:
                    offset = await live.committed(tp)
                    if offset is not None:
                        committed[tp] = offset
            await replay.catch_up(self._show, close_enough=_ANYTHING, at_least=committed)
            switch_offsets = await replay.positions()
            now = datetime.now(UTC)
            async with self.control.session() as s:
                await s.execute(
                    table_of(ProjectionGeneration)
                    .update()
                    .where(ProjectionGeneration.status == LIVE)
                    .values(status=RETIRED, retired_at=now)
                )
                await s.execute(
                    table_of(ProjectionGeneration)
                    .update()
                    .where(ProjectionGeneration.number == number)
                    .values(
                        status=LIVE,
                        switched_at=now,
                        records_done=replay.done,
                        records_total=replay.done,
                        switch_offsets=json.dumps(
                            {
                                f"{tp.topic}:{tp.partition}": position
                                for tp, position in switch_offsets.items()
                            }
                        ),
                    )
                )
                await s.commit()
            old, self.live = self.live, Generation(number, replay.db)
            self.messaging.consume_into(
                self.live.db,
                label=_label(number),
                floors=switch_offsets,
            )
            self.building = None
            if old.db is not self.control:
                self._others.append(old.db)

    async def _record(self, number: int, **values: Any) -> None:
        async with self.control.session() as s:
            await s.execute(
                table_of(ProjectionGeneration)
                .update()
                .where(ProjectionGeneration.number == number)
                .values(**values)
            )
            await s.commit()

    async def generations(self) -> tuple[int, int | None, list[ProjectionGeneration]]:
        """(live, building, every generation), consistent with each other: taken before the
        rows are read, and a switch-over commits its rows before it changes them."""
        live, building, progress = self.live.number, self.building, self.progress
        async with self.control.session() as s:
            rows = list(
                (
                    await s.scalars(
                        select(ProjectionGeneration).order_by(ProjectionGeneration.number)
                    )
                ).all()
            )
        for row in rows:
            if row.number == building and row.status == BUILDING:
                row.records_done, row.records_total = progress
        return live, building, rows

    async def drop(self, number: int) -> ProjectionGeneration | None:
        """Drop a retired (or failed) generation: its database, or gen 0's projection rows."""
        async with self.control.session() as s:
            row = await s.get(ProjectionGeneration, number)
            if row is None:
                return None
            # A "building" row of no running rebuild (its replica crashed) may be dropped; one
            # this replica is building may not. (A stop marks its own rebuild failed.)
            if row.status == LIVE or number == self.building:
                raise CannotDrop(f"generasi {number} berstatus {row.status}")
        if row.location is None:
            # Generation 0 shares the service's database: empty its projection tables (and the
            # inbox they were built with) instead.
            async with self.control.session() as s:
                for model in PROJECTION_MODELS:
                    await s.execute(delete(model))
                await s.execute(
                    delete(InboxMessage).where(
                        InboxMessage.consumer_group == subscriptions.group_id
                    )
                )
                await s.commit()
        else:
            url = generation_url(self.settings.database_url, row.location)
            for db in [d for d in self._others if d.url == url]:
                await db.dispose()
                self._others.remove(db)
            await drop_database(self.settings.database_url, row.location)
        await self._record(number, status=DROPPED)
        async with self.control.session() as s:
            return await s.get(ProjectionGeneration, number)

    async def stop(self) -> None:
        """Stop a rebuild under way (it is marked failed); before messaging stops."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except BaseException:  # cancelled or failed: already recorded
                pass

    async def dispose(self) -> None:
        for db in {id(d): d for d in [self.live.db, *self._others]}.values():
            if db is not self.control:
                await db.dispose()
