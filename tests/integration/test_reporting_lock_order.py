"""Reporting's consumer applies partitions at once, each lane in its own transaction: the
projections' state and version rows, which every change moves, are written once, last, just
before the commit, so no lane holds them while it waits for another lock.

Before, each handler took the state row as it ran. A lane that had applied one event held it
and then asked for the shared identity lock for its next event, while another lane held that
lock exclusively (a merge) and waited for the state row: PostgreSQL found a deadlock and one
lane's whole batch was rolled back and applied again one event at a time.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from bekal.reporting.handlers import subscriptions
from bekal.reporting.models import STATE_ROW_ID, ProjectionState, ProjectionVersion
from bekal.reporting.services.people import ERASURE_KEY_RESOURCE, ErasureKey
from bekal.shared.db import Database
from bekal.shared.events.base import Event
from bekal.shared.events.envelope import EventMeta
from bekal.shared.messaging.consumer import HandlerContext
from bekal.shared.migrations import upgrade
from tests.support.factories import (
    facility_registered,
    facility_updated,
    inmate_shared,
    inmates_merged,
)

pytestmark = pytest.mark.integration

RESOURCES = {ERASURE_KEY_RESOURCE: ErasureKey("the tests' publication secret")}
AT = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


async def _database(url: str) -> Database:
    await asyncio.to_thread(upgrade, "bekal.reporting", url)
    return Database(url)


async def _handle(s: Any, event: Event, at: datetime = AT) -> None:
    meta = EventMeta(
        id=str(uuid.uuid4()),
        type=event.event_type(),
        source="/test",
        subject=event.aggregate_id,
        time=at,
    )
    handler = subscriptions.handlers[event.event_type()]
    await handler(event, HandlerContext(session=s, meta=meta, resources=RESOURCES))


async def _state(db: Database) -> tuple[int, datetime | None]:
    async with db.session() as s:
        version = await s.scalar(
            select(ProjectionVersion.version).where(ProjectionVersion.id == STATE_ROW_ID)
        )
        as_of = await s.scalar(
            select(ProjectionState.data_as_of).where(ProjectionState.id == STATE_ROW_ID)
        )
    assert version is not None
    return version, as_of


async def test_changes_move_the_version_once_a_transaction_and_only_when_it_commits(
    database_url: str,
) -> None:
    db = await _database(database_url)
    try:
        facility = facility_registered()
        async with db.session() as s:
            await _handle(s, facility)
            await s.commit()
        start, as_of = await _state(db)
        assert as_of == AT

        # Rolled back: neither the version nor data-as-of moves, now or at the session's next
        # commit.
        async with db.session() as s:
            await _handle(s, facility_updated(facility, name="Lapas Dibatalkan"), AT + timedelta(1))
            await s.rollback()
            await s.commit()
        assert await _state(db) == (start, AT)

        # Three changes in one transaction, their times out of order: one version, the newest
        # time.
        async with db.session() as s:
            await _handle(s, facility_updated(facility, name="Lapas A"), AT + timedelta(days=3))
            await _handle(s, facility_updated(facility, name="Lapas B"), AT + timedelta(days=5))
            await _handle(s, facility_updated(facility, name="Lapas C"), AT + timedelta(days=4))
            await s.commit()
        assert await _state(db) == (start + 1, AT + timedelta(days=5))

        # An older event later never moves data-as-of back; it still moves the version.
        async with db.session() as s:
            await _handle(s, facility_updated(facility, name="Lapas D"), AT)
            await s.commit()
        assert await _state(db) == (start + 2, AT + timedelta(days=5))
    finally:
        await db.dispose()


async def _exclusive_identity_lock_held(db: Database) -> bool:
    async with db.engine.connect() as conn:
        held = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_locks"
                " WHERE locktype = 'advisory' AND mode = 'ExclusiveLock' AND granted"
            )
        )
    return bool(held)


async def _until_merging_holds_the_lock(db: Database, merging: asyncio.Task[None]) -> None:
    # Polls PostgreSQL's lock table: no event of this process says when another connection
    # was granted a lock.
    for _ in range(3000):
        if merging.done() or await _exclusive_identity_lock_held(db):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the merge neither took the identity lock nor finished in 30 s")


async def test_a_lane_applying_a_merge_and_one_applying_a_share_both_commit(
    database_url: str,
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite serialises writing transactions from their start: no interleaving")
    db = await _database(database_url)
    try:
        facility = facility_registered()
        kept, duplicate = inmate_shared(facility), inmate_shared(facility)
        async with db.session() as s:
            for event in (facility, kept, duplicate):
                await _handle(s, event)
            await s.commit()
        start, _ = await _state(db)

        async def lane(s: Any, *events: Event) -> None:
            for event in events:
                await _handle(s, event)
            await s.commit()

        async with db.session() as a, db.session() as b:
            # Lane A has applied one event of its batch, and goes on later.
            await _handle(a, facility_updated(facility, name="Lapas Kelas I Cipinang Baru"))
            # Lane B applies a merge (the identity lock, exclusive) and commits.
            merging = asyncio.create_task(lane(b, inmates_merged(duplicate, kept)))
            await _until_merging_holds_the_lock(db, merging)
            # Lane A's next event asks for the identity lock (shared), then A commits.
            sharing = asyncio.create_task(lane(a, inmate_shared(facility)))
            outcome = await asyncio.wait_for(
                asyncio.gather(merging, sharing, return_exceptions=True), timeout=30
            )
        assert outcome == [None, None]
        assert (await _state(db))[0] == start + 2
    finally:
        await db.dispose()
