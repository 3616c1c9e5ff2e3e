"""The registry migrations run forward and back on SQLite and PostgreSQL, and 0002 fills the
search names of people registered before it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from alembic import command
from sqlalchemy import inspect, text

from bekal.shared.db import Database
from bekal.shared.migrations import alembic_config, upgrade

pytestmark = pytest.mark.integration

TABLES = {"facilities", "inmates", "inmate_movements", "audit_entries", "import_jobs"}


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def _columns(db: Database, table: str) -> set[str]:
    async with db.engine.connect() as conn:
        return {c["name"] for c in await conn.run_sync(lambda c: inspect(c).get_columns(table))}


async def test_0002_adds_movements_audit_and_imports_and_backfills_search_names(database_url):
    await asyncio.to_thread(upgrade, "bekal.registry", database_url, "0001")
    db = Database(database_url)
    now = datetime(2024, 1, 1, tzinfo=UTC)
    try:
        assert "audit_entries" not in await _tables(db)
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO facilities (id, code, name, kind, facility_class, province, "
                    "regional_office, capacity, active, created_at, updated_at) VALUES "
                    "('f0000000-0000-0000-0000-000000000001', 'LP-OLD', 'Lapas', 'lapas', 'IIA',"
                    " 'Banten', 'Kanwil', 10, :t, :now, :now)"
                ),
                {"t": True, "now": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO inmates (id, registration_number, full_name, nik_hash, sex, "
                    "date_of_birth, facility_id, admission_date, status, consent_training, "
                    "consent_data_sharing, shared, created_at, updated_at) VALUES "
                    "('a0000000-0000-0000-0000-000000000001', 'OLD.1', 'Nur Aḥmad FAUZĪ', "
                    "'h1', 'M', :born, 'f0000000-0000-0000-0000-000000000001', :admitted, "
                    "'in_custody', :f, :f, :f, :now, :now)"
                ),
                {"born": date(1990, 1, 1), "admitted": date(2023, 1, 1), "f": False, "now": now},
            )

        await asyncio.to_thread(upgrade, "bekal.registry", database_url)
        assert TABLES <= await _tables(db)
        assert {"search_name", "nik_encrypted", "merged_into_id", "erased_at"} <= await _columns(
            db, "inmates"
        )
        async with db.engine.connect() as conn:
            row = (await conn.execute(text("SELECT search_name, nik_encrypted FROM inmates"))).one()
        assert tuple(row) == ("nur ahmad fauzi", None)

        def downgrade(revision: str) -> None:
            command.downgrade(alembic_config("bekal.registry", database_url), revision)

        await asyncio.to_thread(downgrade, "0001")
        assert not {"audit_entries", "import_jobs"} & await _tables(db)
        assert "search_name" not in await _columns(db, "inmates")
        await asyncio.to_thread(downgrade, "base")
        assert not TABLES & await _tables(db)
    finally:
        await db.dispose()


async def test_0006_makes_every_key_held_the_first_generation_and_goes_back(database_url):
    """Keys made before generations stay as they were: generation 1, whose kid is the
    participant id; the record of destroyed generations starts empty."""
    await asyncio.to_thread(upgrade, "bekal.registry", database_url, "0005")
    db = Database(database_url)
    now = datetime(2024, 1, 1, tzinfo=UTC)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO person_keys (participant_id, secret, created_at) VALUES "
                    "('a0000000-0000-0000-0000-000000000001', :secret, :now)"
                ),
                {"secret": bytes(32), "now": now},
            )
        await asyncio.to_thread(upgrade, "bekal.registry", database_url)
        async with db.engine.connect() as conn:
            held = await conn.execute(text("SELECT participant_id, generation FROM person_keys"))
            assert [tuple(r) for r in held] == [("a0000000-0000-0000-0000-000000000001", 1)]
            destroyed = await conn.execute(text("SELECT count(*) FROM destroyed_person_keys"))
            assert destroyed.scalar_one() == 0

        def downgrade(revision: str) -> None:
            command.downgrade(alembic_config("bekal.registry", database_url), revision)

        await asyncio.to_thread(downgrade, "0005")
        assert "destroyed_person_keys" not in await _tables(db)
        assert "generation" not in await _columns(db, "person_keys")
        async with db.engine.connect() as conn:
            kept = await conn.execute(text("SELECT count(*) FROM person_keys"))
            assert kept.scalar_one() == 1
    finally:
        await db.dispose()
