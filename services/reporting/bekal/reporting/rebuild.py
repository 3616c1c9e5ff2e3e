"""Rebuild every projection from the beginning of the topics into a fresh database.

``python -m bekal.reporting.rebuild --database-url <fresh database>`` (broker and namespace from
the environment, like the service). The running service keeps answering from its own database
the whole time: this command reads the topics without a consumer group (nothing of the
service's is touched), applies every record with the service's own handlers and inbox, and
stops when it has reached the end of every partition. Switching over is pointing the service's
DATABASE_URL at the new database and restarting it: the new database's inbox holds every event
applied, so whatever the service's consumer group still re-reads is dropped as a duplicate.
The projections depend on neither arrival order nor time, so two rebuilds are identical.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import delete, func, select

from bekal.reporting.handlers import subscriptions
from bekal.reporting.models import Target
from bekal.shared.db import Database
from bekal.shared.events import catalogue
from bekal.shared.messaging.consumer import ConsumerRunner
from bekal.shared.messaging.kafka import make_producer
from bekal.shared.messaging.models import InboxMessage
from bekal.shared.migrations import upgrade
from bekal.shared.settings import Settings

log = structlog.get_logger(__name__)

Progress = Callable[[int, int], None]


class NotFresh(RuntimeError):
    """The target database already holds applied events: a rebuild starts from nothing."""


@dataclass(frozen=True)
class RebuildResult:
    records: int
    outcomes: dict[str, int]


async def rebuild(
    settings: Settings,
    database_url: str,
    *,
    targets_from: str | None = None,
    progress: Progress | None = None,
) -> RebuildResult:
    """Apply every record of the reporting topics, from offset 0 to the end, to ``database_url``.

    Targets are the one thing set here rather than carried by events: ``targets_from`` (the
    database in service) gives the rows to copy.
    """
    await asyncio.to_thread(upgrade, "bekal.reporting", database_url)
    db = Database(database_url)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=500,
    )
    producer = make_producer(settings)  # only for dead letters, as the service would send them
    try:
        async with db.session() as s:
            if await s.scalar(select(func.count()).select_from(InboxMessage)):
                raise NotFresh(f"{database_url} already holds applied events")
        if targets_from:
            await _copy_targets(targets_from, db)
        await consumer.start()
        await producer.start()
        await consumer.topics()
        partitions = [
            TopicPartition(settings.topic(t), p)
            for t in subscriptions.topics
            for p in sorted(consumer.partitions_for_topic(settings.topic(t)) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        runner = ConsumerRunner(
            subscriptions=subscriptions,
            registry=catalogue,
            db=db,
            settings=settings,
            consumer=consumer,
            dlq_producer=producer,
        )
        outcomes: dict[str, int] = {}
        done = 0
        # The end moves while the service's producers write: read until a fresh look at the
        # end offsets finds nothing more, so the new database is at least as far as the old.
        while True:
            ends = await consumer.end_offsets(partitions)
            positions = {tp: await consumer.position(tp) for tp in partitions}
            total = done + sum(max(0, ends[tp] - positions[tp]) for tp in partitions)
            if progress:
                progress(done, total)
            if all(positions[tp] >= ends[tp] for tp in partitions):
                break
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            for records in batches.values():
                for record in records:
                    outcome = await runner.process(record)
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                    done += 1
                    if progress and done % 100 == 0:
                        progress(done, total)
        if progress:
            progress(done, done)
        log.info("projection_rebuilt", records=done, outcomes=outcomes)
        return RebuildResult(records=done, outcomes=outcomes)
    finally:
        await consumer.stop()
        await producer.stop()
        await db.dispose()


async def _copy_targets(source_url: str, target: Database) -> None:
    source = Database(source_url)
    try:
        async with source.session() as s:
            rows = (await s.scalars(select(Target))).all()
        async with target.session() as t:
            await t.execute(delete(Target))
            for row in rows:
                t.add(
                    Target(
                        year=row.year,
                        annual=row.annual,
                        cumulative=row.cumulative,
                        note=row.note,
                        updated_at=row.updated_at,
                        updated_by=row.updated_by,
                    )
                )
            await t.commit()
    finally:
        await source.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bekal.reporting.rebuild",
        description="Rebuild reporting's projections from the beginning of the topics into a "
        "fresh database; the service keeps answering from its own meanwhile.",
    )
    parser.add_argument("--database-url", required=True, help="the fresh database to fill")
    parser.add_argument(
        "--targets-from", help="the database in service, to copy the targets set by hand"
    )
    args = parser.parse_args(argv)
    settings = Settings(service_name="reporting")

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("Membangun ulang proyeksi"), BarColumn(), MofNCompleteColumn()) as bar:
        task = bar.add_task("rebuild", total=None)

        def show(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            result = asyncio.run(
                rebuild(settings, args.database_url, targets_from=args.targets_from, progress=show)
            )
        except NotFresh as exc:
            print(f"Basis data tujuan tidak kosong: {exc}", file=sys.stderr)
            return 2
    print(
        f"Selesai: {result.records} peristiwa diterapkan ({result.outcomes}). Arahkan "
        f"DATABASE_URL layanan reporting ke basis data baru lalu mulai ulang layanan."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
