"""The guard every test runs under (tests/support/leaks.py) names what a test leaves behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from bekal.shared.db import Database
from bekal.shared.messaging.kafka import make_producer
from bekal.shared.messaging.outbox import OutboxRelay
from bekal.shared.settings import Settings
from tests.support import leaks


async def test_a_connection_not_given_back_and_an_engine_not_disposed_are_named(
    tmp_path: Path,
) -> None:
    owner = leaks._Owner("a test that leaks", checked=True)
    with leaks._owned_by(owner):
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'leaky.db'}")
        held = await db.engine.connect()  # never closed
        async with db.engine.connect() as returned:  # back in the pool: open until disposed
            await returned.execute(text("SELECT 1"))
    try:
        found = leaks.leaks_of(owner)
        assert len(found) == 2, found
        # Named with the task that took it and never gave it back.
        taker = asyncio.current_task()
        assert taker is not None
        assert sum(f"(checked out by {taker.get_name()} (" in f for f in found) == 1, found
        assert sum("(in an undisposed pool)" in f for f in found) == 1, found
        assert leaks.leaks_of(owner) == []  # named once
    finally:
        await held.close()
        await db.dispose()


async def test_a_disposed_engine_leaves_nothing(tmp_path: Path) -> None:
    owner = leaks._Owner("a test that cleans up", checked=True)
    with leaks._owned_by(owner):
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'tidy.db'}")
        async with db.session() as session:
            await session.execute(text("SELECT 1"))
        await db.dispose()
    assert leaks.leaks_of(owner) == []


async def test_a_relay_still_running_after_its_test_is_named_and_cancelled(
    tmp_path: Path, make_settings: object
) -> None:
    settings: Settings = make_settings(  # type: ignore[operator]
        "training", f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
    )
    owner = leaks._Owner("a test whose app never stopped", checked=True)
    with leaks._owned_by(owner):
        db = Database(settings.database_url)
        relay = OutboxRelay(db=db, producer=make_producer(settings), settings=settings)
        relay.start()  # no outbox table: it fails, backs off and tries again, for good
    try:
        await asyncio.sleep(0.05)
        found = leaks.leaks_of(owner)
        assert "OutboxRelay task 'outbox-relay-training' still running" in found, found
        await asyncio.gather(relay._task, return_exceptions=True)  # type: ignore[arg-type]
        assert relay._task is not None and relay._task.cancelled()
    finally:
        await db.dispose()
