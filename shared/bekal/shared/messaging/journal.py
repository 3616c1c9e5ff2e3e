"""The consumer journal: an append-only record of every delivery and every application.

Off by default (``CONSUMER_JOURNAL=true`` turns it on). The inbox keeps one row per event and
group, so it can never show an event applied twice: its unique key is what prevents it. The
journal has no such key. For every record the runner is about to apply it appends a
``delivered`` row in a transaction of its own (so it stays even if the process dies before the
effect commits), and for every record whose effect commits it appends an ``applied`` row in
that same transaction (so it exists exactly when the effect does). An audit, or a fault test,
then reads:

- an event with two ``applied`` rows: its effect was committed twice (a broken guarantee);
- an event with two ``delivered`` rows: Kafka delivered it again (after a crash, a rebalance,
  an uncommitted offset): the case the inbox is there for;
- an event with a ``delivered`` row and no ``applied`` row: not applied yet, or lost.

The table is not part of a service's schema: it is created when the journal is first used.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, inspect, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bekal.shared.db import Database, UTCDateTime, insert_rows, new_metadata, utcnow

DELIVERED = "delivered"
APPLIED = "applied"


class JournalBase(DeclarativeBase):
    metadata = new_metadata()


class JournalEntry(JournalBase):
    __tablename__ = "consumer_journal"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    consumer_group: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str] = mapped_column(String(200))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    pid: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_consumer_journal_event", "consumer_group", "event_id"),)


class Journal:
    """Appends a consumer group's journal rows (see the module's docstring)."""

    def __init__(self, db: Database, group: str) -> None:
        self.db = db
        self.group = group
        self._ready = False

    async def _ensure_table(self) -> None:
        if self._ready:
            return
        try:
            async with self.db.engine.begin() as connection:
                await connection.run_sync(JournalBase.metadata.create_all, checkfirst=True)
        except DBAPIError:
            # Replicas sharing a database start together: another one may have created it
            # between the check and the CREATE. Anything else is a real failure.
            async with self.db.engine.connect() as connection:
                tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
            if JournalEntry.__tablename__ not in tables:
                raise
        self._ready = True

    def _rows(self, stage: str, records: Sequence[tuple[str, str, int, int]]) -> list[dict]:
        now, pid = utcnow(), os.getpid()
        return [
            {
                "consumer_group": self.group,
                "event_id": event_id,
                "stage": stage,
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "pid": pid,
                "at": now,
            }
            for event_id, topic, partition, offset in records
        ]

    async def delivered(self, records: Sequence[tuple[str, str, int, int]]) -> None:
        """``(event_id, topic, partition, offset)`` of records about to be applied; committed."""
        if not records:
            return
        await self._ensure_table()
        async with self.db.session() as session:
            await insert_rows(session, JournalEntry.__table__, self._rows(DELIVERED, records))  # type: ignore[arg-type]
            await session.commit()

    async def applied(
        self, session: AsyncSession, records: Sequence[tuple[str, str, int, int]]
    ) -> None:
        """The records whose effects ``session`` is about to commit, in that same transaction."""
        if not records:
            return
        await self._ensure_table()
        await insert_rows(session, JournalEntry.__table__, self._rows(APPLIED, records))  # type: ignore[arg-type]


async def journal_counts(session: AsyncSession, group: str) -> dict[str, int]:
    """Rows, distinct events and repeats per stage: what an audit or a fault test reads."""
    from sqlalchemy import func

    out: dict[str, int] = {}
    for stage in (DELIVERED, APPLIED):
        rows, distinct = (
            await session.execute(
                select(func.count(), func.count(func.distinct(JournalEntry.event_id))).where(
                    JournalEntry.consumer_group == group, JournalEntry.stage == stage
                )
            )
        ).one()
        out[f"{stage}_rows"] = int(rows)
        out[f"{stage}_events"] = int(distinct)
        out[f"{stage}_again"] = int(rows) - int(distinct)
    return out
