"""The outbox indexes only the rows waiting for the relay, in every service, on SQLite and
PostgreSQL: a database made before keeps working after the upgrade, and the relay's read walks
that index."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from sqlalchemy import inspect, text

from bekal.shared.db import Database, plan_each_statement
from bekal.shared.messaging.outbox import pending
from bekal.shared.migrations import alembic_config, upgrade

pytestmark = pytest.mark.integration

# Each service's revision before the one that brought the partial index.
BEFORE = {
    "bekal.registry": "0006",
    "bekal.training": "0007",
    "bekal.certification": "0004",
    "bekal.reporting": "0008",
}
OLD = {"ix_outbox_sent_at", "ix_outbox_unsent"}


async def _indexes(db: Database) -> dict[str, list[str]]:
    async with db.engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_indexes("outbox"))
    return {i["name"]: list(i["column_names"]) for i in found}


async def _pending_index_sql(db: Database) -> str:
    query = (
        "SELECT sql FROM sqlite_master WHERE name = 'ix_outbox_pending'"
        if db.is_sqlite
        else "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_outbox_pending'"
    )
    async with db.engine.connect() as conn:
        return str(await conn.scalar(text(query)))


async def _as_made_before(db: Database) -> None:
    """The outbox as the first revision made it until the partial index came."""
    async with db.engine.begin() as conn:
        await conn.execute(text("DROP INDEX ix_outbox_pending"))
        await conn.execute(text("CREATE INDEX ix_outbox_sent_at ON outbox (sent_at)"))
        await conn.execute(text("CREATE INDEX ix_outbox_unsent ON outbox (sent_at, seq)"))


async def _plan_of_relay_read(db: Database) -> str:
    async with db.session() as session:
        statement = pending(after=41, limit=200)
        compiled = statement.compile(
            dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
        )
        if db.is_sqlite:
            rows = await session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            return " ".join(str(r[-1]) for r in rows)
        # An empty table is read whole, whatever its indexes: ask for the plan an index gives.
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        rows = await session.execute(text(f"EXPLAIN {compiled}"))
        return " ".join(str(r[0]) for r in rows)


@pytest.mark.parametrize("package", sorted(BEFORE))
async def test_upgrade_replaces_the_sent_at_indexes_with_one_of_unsent_rows(database_url, package):
    await asyncio.to_thread(upgrade, package, database_url, BEFORE[package])
    db = Database(database_url)
    try:
        await _as_made_before(db)
        assert OLD <= set(await _indexes(db))

        await asyncio.to_thread(upgrade, package, database_url)
        indexes = await _indexes(db)
        assert not OLD & set(indexes)
        assert indexes["ix_outbox_pending"] == ["seq"]
        assert "WHERE" in (where := await _pending_index_sql(db)) and "sent_at IS NULL" in where
        assert "ix_outbox_pending" in await _plan_of_relay_read(db)

        cfg = alembic_config(package, database_url)
        await asyncio.to_thread(command.downgrade, cfg, BEFORE[package])
        indexes = await _indexes(db)
        assert OLD <= set(indexes) and "ix_outbox_pending" not in indexes
    finally:
        await db.dispose()


async def test_a_new_database_holds_only_unsent_rows_in_the_relay_index(database_url):
    await asyncio.to_thread(upgrade, "bekal.registry", database_url)
    db = Database(database_url)
    try:
        assert not OLD & set(await _indexes(db))
        assert "sent_at IS NULL" in await _pending_index_sql(db)
        async with db.engine.begin() as conn:
            for seq, sent in ((1, True), (2, False), (3, True), (4, False)):
                await conn.execute(
                    text(
                        "INSERT INTO outbox (seq, event_id, topic, aggregate_id, event_type, "
                        "payload, created_at, sent_at, attempts) VALUES (:seq, :id, 't', 'a', "
                        "'e', '{}', CURRENT_TIMESTAMP, "
                        + ("CURRENT_TIMESTAMP" if sent else "NULL")
                        + ", 0)"
                    ),
                    {"seq": seq, "id": f"00000000-0000-0000-0000-00000000000{seq}"},
                )
        async with db.session() as session:
            first = [r.seq for r in await session.execute(pending(after=None, limit=10))]
            later = [r.seq for r in await session.execute(pending(after=2, limit=10))]
        assert first == [2, 4]
        assert later == [4]
        assert "ix_outbox_pending" in await _plan_of_relay_read(db)
    finally:
        await db.dispose()


async def _plan(db: Database, statement: str, *, by_index: bool) -> str:
    async with db.session() as session:
        if by_index:
            await plan_each_statement(session, by_index=True)
        rows = await session.execute(text(f"EXPLAIN {statement}"))
        return " ".join(str(r[0]) for r in rows)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_relay_reads_an_outbox_never_analysed_through_its_index(database_url):
    """A bulk load's rows, not yet analysed: the relay still takes its next batch as the first
    rows of the unsent rows' index, not a scan of every row past the last one read and a sort
    (each batch then reads all the rest), and marks a batch sent through the key."""
    await asyncio.to_thread(upgrade, "bekal.registry", database_url)
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO outbox (seq, event_id, topic, aggregate_id, event_type, payload, "
                    "created_at, sent_at, attempts) SELECT n, gen_random_uuid(), 't', 'a', 'e', "
                    "repeat('x', 600), now(), NULL, 0 FROM generate_series(1, 20000) AS n"
                )
            )
            analysed = await conn.scalar(
                text("SELECT reltuples >= 0 FROM pg_class WHERE relname = 'outbox'")
            )
        assert not analysed  # what a bulk load leaves before autovacuum comes round

        read = pending(after=5000, limit=1000).compile(
            dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}
        )
        # The settings the relay's transaction takes: an ordered walk of the index, no sort.
        plan = await _plan(db, str(read), by_index=True)
        assert "Index Scan using ix_outbox_pending" in plan and "Sort" not in plan
        mark = "UPDATE outbox SET sent_at = now() WHERE seq = ANY(ARRAY[5001, 5002, 5003])"
        assert "Index Scan using pk_outbox" in await _plan(db, mark, by_index=True)
        # Without them, the plan this test guards against (the statistics missing).
        plain = await _plan(db, str(read), by_index=False)
        assert "Sort" in plain or "Bitmap" in plain or "Seq Scan" in plain

        async with db.session() as session:
            await plan_each_statement(session, by_index=True)
            got = [r.seq for r in await session.execute(pending(after=5000, limit=1000))]
        assert got == list(range(5001, 6001))
    finally:
        await db.dispose()
