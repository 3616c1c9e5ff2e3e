"""The reporting migrations run forward and back on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from sqlalchemy import inspect, text

from bekal.shared.db import Database
from bekal.shared.migrations import alembic_config, upgrade

pytestmark = pytest.mark.integration

PROJECTIONS = {
    "facilities",
    "programs",
    "sessions",
    "enrollments",
    "certificates",
    "projection_state",
    "participants",
    "certificate_revocations",
    "erased_participants",
    "merged_participants",
    "targets",
}
PLATFORM = {"outbox", "inbox", "dead_letters", "idempotency_keys"}


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_migrations_create_the_projections_with_one_state_row_and_drop_them(database_url):
    await asyncio.to_thread(upgrade, "bekal.reporting", database_url)
    db = Database(database_url)
    try:
        assert PROJECTIONS | PLATFORM <= await _tables(db)
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, data_as_of FROM projection_state"))).all()
        assert [tuple(r) for r in rows] == [(1, None)]
        async with db.engine.connect() as conn:
            targets = (
                await conn.execute(
                    text("SELECT year, annual, cumulative FROM targets ORDER BY year")
                )
            ).all()
        # The announced targets are there from the start.
        assert [tuple(r) for r in targets] == [(2017, 5000, None), (2019, None, 20000)]

        await asyncio.to_thread(upgrade, "bekal.reporting", database_url)  # idempotent

        def downgrade() -> None:
            command.downgrade(alembic_config("bekal.reporting", database_url), "base")

        await asyncio.to_thread(downgrade)
        assert not (PROJECTIONS | PLATFORM) & await _tables(db)
    finally:
        await db.dispose()
