"""The consumer journal shows what the inbox cannot: a delivery repeated, an effect doubled.

The fault tests count effects with it, so it must be able to show a double: with the inbox
row of an event removed (a dedupe that failed), the second delivery applies the event again
and the journal says so, while the inbox still holds one row per event.
"""

from __future__ import annotations

import pytest
from sqlalchemy import delete, inspect
from sqlalchemy.exc import DBAPIError

from bekal.shared.db import Database
from bekal.shared.events.catalogue import InmateReleased
from bekal.shared.messaging.consumer import ConsumerRunner, HandlerContext, Subscriptions
from bekal.shared.messaging.journal import journal_counts
from bekal.shared.messaging.models import InboxMessage
from bekal.shared.migrations import create_platform_tables
from tests.support.factories import inmate_released
from tests.support.faults import wait_committed_to_log_end
from tests.support.kafka import publish, records_on
from tests.support.runners import start_runner
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

EVENTS = 20


def _subscriptions() -> Subscriptions:
    subs = Subscriptions("training")

    @subs.on(InmateReleased)
    async def on_released(event: InmateReleased, ctx: HandlerContext) -> None:
        return None

    return subs


async def _runner(settings, db, runner_class=ConsumerRunner):  # type: ignore[no-untyped-def]
    return await start_runner(settings, db, _subscriptions(), runner_class=runner_class)


@pytest.mark.parametrize("dedupe_broken", [False, True], ids=["inbox", "inbox-emptied"])
async def test_journal_counts_repeated_deliveries_and_shows_a_doubled_effect(
    database_url, broker, make_settings, dedupe_broken
):
    settings = make_settings("training", database_url, broker, consumer_journal=True)
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(create_platform_tables)
    runner, producer = await _runner(settings, db)
    await publish(settings, [inmate_released() for _ in range(EVENTS)])
    records = await records_on(settings, "registry.inmates")
    try:
        await runner.process_batch(records)
        if dedupe_broken:
            async with db.session() as s:
                await s.execute(delete(InboxMessage))
                await s.commit()
        await runner.process_batch(records)  # Kafka delivers the same records again
        async with db.session() as s:
            counts = await journal_counts(s, "training")
    finally:
        await runner.consumer.stop()
        await producer.stop()
        await db.dispose()

    assert counts["delivered_rows"] == 2 * EVENTS
    assert counts["delivered_again"] == EVENTS
    assert counts["applied_events"] == EVENTS
    assert counts["applied_again"] == (EVENTS if dedupe_broken else 0)


async def test_journal_is_off_unless_asked_for(database_url, broker, make_settings):
    settings = make_settings("training", database_url, broker)
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(create_platform_tables)
    runner, producer = await _runner(settings, db)
    await publish(settings, [inmate_released() for _ in range(3)])
    try:
        await runner.process_batch(await records_on(settings, "registry.inmates"))
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await runner.consumer.stop()
        await producer.stop()
        await db.dispose()
    assert runner.processed == 3
    assert "consumer_journal" not in tables


class _FailsOnce(ConsumerRunner):
    """A runner with a bug that strikes once, after a fetch's effects are committed and
    before its offsets are: the worst moment, for a runner that would skip or double."""

    struck = False

    async def _apply_read(self, read):  # type: ignore[no-untyped-def]
        done = await super()._apply_read(read)
        if not self.struck and done:
            self.struck = True
            raise RuntimeError("a bug nothing below handles")
        return done


async def test_runner_that_fails_unexpectedly_starts_over_from_committed_offsets(
    database_url, broker, make_settings
):
    settings = make_settings("training", database_url, broker, consumer_journal=True)
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(create_platform_tables)
    runner, producer = await _runner(settings, db, _FailsOnce)
    await publish(settings, [inmate_released() for _ in range(EVENTS)])
    runner.start()
    try:
        await wait_until(lambda: _applied_at_least(db, EVENTS), within=60, what="every event")
        await wait_committed_to_log_end(settings, "training", ["registry.inmates"], within=60)
        assert runner.running  # the failure did not end it
        async with db.session() as s:
            counts = await journal_counts(s, "training")
    finally:
        await runner.stop()
        await runner.consumer.stop()
        await producer.stop()
        await db.dispose()
    assert runner.failures == 1
    assert counts["applied_events"] == EVENTS
    assert counts["applied_again"] == 0
    assert counts["delivered_again"] > 0  # what the failed fetch applied came again


async def _applied_at_least(db: Database, n: int) -> bool:
    try:
        async with db.session() as s:
            return (await journal_counts(s, "training"))["applied_events"] >= n
    except DBAPIError:  # the journal's table comes with the first delivery
        return False
